// Package pgrestart holds one test: PostgreSQL restarted in the middle of
// a run. It is a package of its own so that CI can run it alone, after the
// other tests: while the server is down, every other PostgreSQL test would
// fail. It runs only when ORDO_TEST_PG_RESTART=1 (as .ci/run sets it).
package pgrestart
