package ordostore

import "context"

// InstancesGetter is implemented by stores that read many instances in one
// query. It is optional: the engine uses it, when the store has it, to load
// the instances of a batch of due timers at once, and reads them one by one
// otherwise. ordostoretest checks it on stores that implement it.
type InstancesGetter interface {
	// GetInstances returns the instances among ids that exist, in no
	// particular order. Unknown IDs are left out; no ID is an error.
	GetInstances(ctx context.Context, ids []string) ([]*Instance, error)
}
