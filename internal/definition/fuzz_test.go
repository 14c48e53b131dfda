package definition

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ordoflow/ordo/ordotype"
)

// FuzzParse checks that no input makes Parse panic, that every error is a
// *ValidationError, and that every definition Parse accepts parses back
// from its Source to the same hash. The seeds are the files under
// testdata/valid and testdata/invalid, and run in every go test.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*", "testdata/invalid/*.yaml", "testdata/invalid/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) == 0 || !errors.Is(err, ordotype.ErrInvalid) {
				t.Fatalf("Parse returned %T %v, want a *ValidationError", err, err)
			}
			return
		}
		again, err := Parse(w.Source, "source.json")
		if err != nil {
			t.Fatalf("Source does not parse back: %v\n%s", err, w.Source)
		}
		if again.Hash != w.Hash {
			t.Fatalf("Source parses back to another hash:\n%s\n%s", w.Source, again.Source)
		}
	})
}
