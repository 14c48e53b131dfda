.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -E '^[a-zA-Z/_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: run
run: ## Run the order-fulfilment example on a fresh SQLite file
	go run ./examples/order-fulfilment

.PHONY: test
test: ## Run every test with the race detector (what CI runs)
	go test -race ./...

.PHONY: test/short
test/short: ## Run the quick tests (no crash test, no fuzz seeds beyond the corpus)
	go test -short ./...

.PHONY: test/timers
test/timers: ## The 100,000-timer memory test and the timer crash test, without the race detector
	go test -count=1 -v -run 'TestTimers_|TestCrash_KillNineWhileFiringTimers' .

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...

.PHONY: fuzz
fuzz: ## Fuzz the definition parser for a minute
	go test -run='^$$' -fuzz=FuzzParse -fuzztime=60s ./internal/definition/

.PHONY: bench
bench: ## Go benchmarks of the hot paths
	go test -run='^$$' -bench=. -benchmem ./internal/... ./ordosqlite/

.PHONY: bench/e2e
bench/e2e: ## The end-to-end reference workloads (see BENCHMARKS.md)
	go run ./cmd/ordo bench --workload linear3 --instances 10000 --concurrency 50
	go run ./cmd/ordo bench --workload order --instances 10000 --concurrency 100

.PHONY: build
build: ## Build the ordo binary into ./bin
	CGO_ENABLED=0 go build -o bin/ordo ./cmd/ordo

.PHONY: ci
ci: ## Run what CI runs
	bash .ci/run
