package ordostore

import "time"

// Message is a message kept for receive steps: sent to the engine, it waits
// in the store until an instance's receive step with the same name and
// correlation key consumes it, or until it expires.
type Message struct {
	// ID is the store's row ID, given by PutMessage.
	ID int64
	// Name is the message's name ("CreditCardUpdated").
	Name string
	// Key is the correlation key a receive step waits for.
	Key string
	// MessageID is the sender's ID of the message; a second message with
	// the same Name and MessageID is a duplicate.
	MessageID string
	Payload   []byte // JSON
	CreatedAt time.Time
	// ExpiresAt is when an unconsumed message is dropped, and when a
	// consumed one stops guarding against duplicates.
	ExpiresAt time.Time
	// ConsumedBy is the ID of the instance that consumed the message, ""
	// while it waits.
	ConsumedBy string
}

// ListMessagesParams are the parameters of [Store.ListMessages].
type ListMessagesParams struct {
	Name string
	Key  string
	// Now: messages that expired before it are left out.
	Now time.Time
	// Limit defaults to 100.
	Limit int
}

// ConsumeRef is a message a transition consumes: the transition holds only
// if the message is still unconsumed, and marks it consumed by By.
type ConsumeRef struct {
	ID int64
	By string
}

// AcquireSlotParams are the parameters of [Store.AcquireSlot].
type AcquireSlotParams struct {
	// Group names the set of slots ("order/customer-42").
	Group string
	// Limit is how many holders the group allows at once, at least 1.
	Limit int
	// Holder takes a slot; a holder that already has one keeps it.
	Holder string
	Now    time.Time
}
