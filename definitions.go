package ordo

import (
	"context"
	"fmt"
	"time"

	"github.com/ordoflow/ordo/internal/definition"
)

// DefinitionVersion is a stored version of a workflow definition.
type DefinitionVersion struct {
	Name      string
	Version   int
	Hash      string
	CreatedAt time.Time
	// Definition is the compiled definition of this version.
	Definition *Definition
}

// Definitions returns the latest version of every stored definition, by
// name.
func (e *Engine) Definitions(ctx context.Context) ([]*DefinitionVersion, error) {
	rows, err := e.store.ListDefinitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("ordo: definitions: %w", err)
	}
	out := make([]*DefinitionVersion, 0, len(rows))
	for _, r := range rows {
		w, err := definition.Parse(r.Source, r.Name+".json")
		if err != nil {
			return nil, fmt.Errorf("ordo: stored definition %s v%d no longer compiles: %w", r.Name, r.Version, err)
		}
		out = append(out, &DefinitionVersion{Name: r.Name, Version: r.Version, Hash: r.Hash, CreatedAt: r.CreatedAt, Definition: &Definition{w: w}})
	}
	return out, nil
}

// DefinitionVersion returns one stored version of a definition (0: the
// latest). Errors: [ErrNotFound].
func (e *Engine) DefinitionVersion(ctx context.Context, name string, version int) (*DefinitionVersion, error) {
	r, err := e.store.GetDefinition(ctx, name, version)
	if err != nil {
		return nil, fmt.Errorf("ordo: definition %s: %w", name, err)
	}
	w, err := definition.Parse(r.Source, r.Name+".json")
	if err != nil {
		return nil, fmt.Errorf("ordo: stored definition %s v%d no longer compiles: %w", r.Name, r.Version, err)
	}
	return &DefinitionVersion{Name: r.Name, Version: r.Version, Hash: r.Hash, CreatedAt: r.CreatedAt, Definition: &Definition{w: w}}, nil
}
