/*
Package ordo is a durable workflow engine for Go services.

A workflow is declared once — in YAML/JSON or with the Go builder — as a graph
of steps. Ordo runs every instance of it to the end through crashes, retries
and waits, and keeps an event-sourced journal of everything that happened to
each instance.

# Embedding

Open an engine on an SQLite file (no server, no set-up), register a workflow
with the Go handlers of its steps, and start instances:

	eng, err := ordo.Open(ctx, ordo.SQLite("orders.db"), nil)
	if err != nil {
		return err
	}
	defer eng.Close(ctx)

	def, err := ordo.LoadDefinition("order-fulfilment.yaml")
	...
	_, err = eng.Register(ctx, def, ordo.Handlers{"payment": pay, "ship": ship})
	id, err := eng.Start(ctx, "order-fulfilment", order, ordo.IdempotencyKey(order.ID))
	inst, err := eng.Wait(ctx, id)

# Definitions

Steps form a DAG through their after: lists, so parallel branches and joins
come from the graph itself. when: conditions are CEL expressions over input,
state and outputs. Each step has a retry policy (exponential backoff with
jitter) and a timeout, and may name an onError path. See [NewWorkflow],
[ParseDefinition] and docs/definitions.md.

# Handlers and side effects

A [Handler] receives the step's input (the output of the step before it, or
for a join the outputs of all of them), the workflow's state and an
idempotency key, and returns a [Result]: its output, the new state and side
effects as data. Ordo commits the result and then performs the side effects
(an HTTP call, a log line, or any type registered with [Engine.HandleEffect]),
each with a stable idempotency key, retried with backoff and journaled.

# Guarantees

Every state change is one transaction: journal events, the instance's read
model and the work it creates. A result is applied once: appends check the
instance's sequence number and completions name the task they complete.
Handlers and side effects run at least once, with idempotency keys. Nothing
that waits is held in memory. A process killed at any instant loses nothing
it acknowledged.

# Testing

Package ordotest runs an engine on a temporary file with a fake clock;
ordotest.Tester.RunUntilIdle runs everything and moves the clock over
backoffs and timers, so a week-long flow is tested in milliseconds.
*/
package ordo
