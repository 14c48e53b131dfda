package ordo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ordoflow/ordo"
)

// Open an engine on an SQLite file, register a workflow with its Go
// handlers, start an instance and wait for it to end.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ordo-example-")
	defer os.RemoveAll(dir)

	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(dir, "orders.db")), nil)
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)

	def := ordo.NewWorkflow("greet").
		Step(ordo.Task("name", "upper")).
		Step(ordo.Task("greet", "greet").After("name")).
		MustBuild()
	_, err = eng.Register(ctx, def, ordo.Handlers{
		"upper": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var in struct{ Name string }
			if err := req.Bind(&in); err != nil {
				return ordo.Result{}, err
			}
			return ordo.Result{Output: in.Name + "!"}, nil
		},
		"greet": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var name string
			if err := req.Bind(&name); err != nil {
				return ordo.Result{}, err
			}
			return ordo.Result{Output: "hello, " + name}, nil
		},
	})
	if err != nil {
		panic(err)
	}

	id, err := eng.Start(ctx, "greet", map[string]string{"name": "Ada"}, ordo.IdempotencyKey("greet-ada"))
	if err != nil {
		panic(err)
	}
	inst, err := eng.Wait(ctx, id)
	if err != nil {
		panic(err)
	}
	fmt.Println(inst.Status, string(inst.Output))
	for _, s := range inst.Steps {
		fmt.Println(s.ID, s.Status, s.Attempt)
	}
	// Output:
	// completed "hello, Ada!"
	// name completed 1
	// greet completed 1
}
