package ordostore

// Notifier is an optional capability of a [Store] shared by several
// processes: it tells a process that another one made work it may claim.
// The engine uses it when its store implements it, so that an idle node
// picks up a task created by another node at once rather than at its next
// poll.
//
// A wake-up carries nothing: it only says "look in the store now". It may
// come without new work, and work may come without a wake-up (a
// notification lost while the connection was down), so the engine still
// polls, only less often.
type Notifier interface {
	// Wake returns a channel that receives a value when another process
	// (or this one) committed tasks that were not leased at insert time,
	// or handed leases back. The channel is buffered (one value) and never
	// closed; wake-ups that arrive while one is pending are merged.
	// Every call returns the same channel.
	Wake() <-chan struct{}
}
