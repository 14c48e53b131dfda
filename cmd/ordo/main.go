// Command ordo is Ordo's command-line tool. See `ordo help`.
package main

import (
	"os"

	"github.com/ordoflow/ordo/cmd/ordo/ordocli"
)

func main() {
	os.Exit(ordocli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
