/*
Package worker runs the steps of Ordo workflows in a Go service that is not
the Ordo server: a remote worker. A step written as

	steps:
	  - id: payment
	    task: {queue: payment}

is offered on the queue "payment"; a worker polls that queue over the
server's HTTP API, runs the task with the handler registered for it, and
completes or fails it.

	w, err := worker.New(worker.Options{
		Server:      "http://127.0.0.1:7070",
		Token:       os.Getenv("ORDO_TOKEN"), // a token with the operator role
		Concurrency: 16,
	})
	if err != nil {
		return err
	}
	w.Handle("payment", func(ctx context.Context, t *worker.Task) (*worker.Result, error) {
		var order struct{ OrderID string; Amount int }
		if err := t.Bind(&order); err != nil {
			return nil, err
		}
		if err := charge(ctx, order, t.IdempotencyKey); err != nil {
			return nil, err // retried per the step's retry policy
		}
		return &worker.Result{Output: map[string]any{"paid": order.Amount}}, nil
	})
	return w.Run(ctx) // until ctx is done

# What Run does

[Worker.Run] long-polls the registered queues (one poll at a time, asking
for as many tasks as there are free slots) and runs up to
[Options.Concurrency] tasks at once. While a handler runs, its task's lease
is renewed at a third of the lease's length; when the server says the lease
is lost (it expired, and the task may be running on another worker), the
handler's context is cancelled with [ErrLeaseLost] and its result is
dropped. A result is sent with the claim the task was polled with, so a late
one — after the lease expired and the task went to another worker — is
refused by the server, logged, and dropped: the step is completed once.

When Run's context is done, it stops polling, lets the handlers in flight
finish (for at most [Options.StopTimeout]), sends their results, and
returns.

# Results and errors

A handler returns a [Result]: the step's output, the workflow's new state,
and side effects ([HTTPEffect], [LogEffect]) for the server to perform once
the step is committed. An error fails the attempt: the step is retried per
its retry policy, unless the error is made with [NonRetryable]; [WithCode]
gives it a code the workflow's error paths can match. These mirror
ordo.NonRetryable and ordo.WithCode of the in-process library, and errors
made with those are classified the same way. A panic in a handler fails the
attempt (retryable).

# At least once

A task runs at least once per attempt: a worker that dies holds its tasks
until their leases end, then they are handed out again. [Task].IdempotencyKey
is the same for every delivery of an attempt; pass it to the services the
handler calls.

The protocol itself (for workers in other languages) is in docs/workers.md;
this package is described in docs/worker-sdk.md.
*/
package worker
