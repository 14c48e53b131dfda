// Package testhook lets ordotest reach the engine behind an *ordo.Engine
// without widening the public API.
package testhook

import "github.com/ordoflow/ordo/internal/engine"

// EngineOf returns the engine behind an *ordo.Engine. Package ordo sets it.
var EngineOf func(v any) *engine.Engine
