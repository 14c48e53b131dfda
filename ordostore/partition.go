package ordostore

import "hash/fnv"

// Partition returns the partition, in [0, n), of the instance with the
// given ID: the FNV-1a 64-bit hash of the ID's bytes, modulo n. It is a
// pure function of the ID, the same in every process and release, so that
// every message about one instance (its commands and replies on NATS or
// Kafka) goes to one partition and is handled in order. n <= 0 is taken as
// 1 (every instance in partition 0).
//
// docs/operations.md says how partitions map to broker partitions and
// subjects, and how to grow their number.
func Partition(id string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum64() % uint64(n))
}
