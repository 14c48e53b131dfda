package definition

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// MaxSourceSize is the largest definition [Parse] accepts, in bytes.
const MaxSourceSize = 1 << 20

// position is a place in the source, counting from 1.
type position struct{ line, column int }

// issue is a problem found at a path of the spec ("steps.2.after.0"). at,
// when set, overrides the position recorded for the path.
type issue struct {
	path    string
	message string
	at      *position
}

// decoder turns a YAML node tree into a Spec, strictly: unknown fields,
// duplicate keys and values of the wrong type are issues. It records where
// every value is so that later problems can name a line.
type decoder struct {
	positions map[string]position
	issues    []issue
}

// syntaxError is a problem that stops decoding, such as a YAML error, with
// the position the YAML library reported (0 if none).
type syntaxError struct {
	position
	message string
}

// yamlLine matches the position prefix of YAML library errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// decodeSpec parses data into a Spec. A syntax error is returned alone;
// otherwise the spec is as complete as the data allows and issues lists
// everything that did not fit.
func decodeSpec(data []byte) (*Spec, *decoder, *syntaxError) {
	if len(data) > MaxSourceSize {
		return nil, nil, &syntaxError{message: fmt.Sprintf("definition is %d bytes, more than the limit of %d", len(data), MaxSourceSize)}
	}
	root, err := parseYAML(data)
	if err != nil {
		msg := err.Error()
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		return nil, nil, &syntaxError{position: position{line: line}, message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	if root == nil {
		return nil, nil, &syntaxError{message: "definition is empty"}
	}
	if alias := findAlias(root); alias != nil {
		return nil, nil, &syntaxError{position: position{alias.Line, alias.Column}, message: "YAML aliases are not allowed"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, &syntaxError{position: position{root.Line, root.Column}, message: "definition must be a mapping with workflow and steps"}
	}
	d := &decoder{positions: map[string]position{}}
	spec := &Spec{}
	d.value(root, reflect.ValueOf(spec).Elem(), "")
	return spec, d, nil
}

// parseYAML parses exactly one YAML document into a node tree, without
// expanding aliases. It returns nil for an empty document.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	// The YAML library reports errors by panicking internally; make sure
	// no unexpected panic escapes it.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("yaml: line %d: only one document is allowed", extra.Line)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// findAlias returns the first alias node in the tree, if any. Aliases are
// rejected outright, which rules out expansion bombs.
func findAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := findAlias(c); a != nil {
			return a
		}
	}
	return nil
}

// child returns the path of a field or element below path.
func child(path string, elem any) string {
	if path == "" {
		return fmt.Sprint(elem)
	}
	return fmt.Sprintf("%s.%v", path, elem)
}

// failf records an issue at path.
func (d *decoder) failf(path string, format string, args ...any) {
	d.issues = append(d.issues, issue{path: path, message: fmt.Sprintf(format, args...)})
}

var (
	durationType    = reflect.TypeFor[Duration]()
	stringListType  = reflect.TypeFor[StringList]()
	errorRoutesType = reflect.TypeFor[ErrorRoutes]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
)

// value decodes n into v, which is a field of the spec at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	d.positions[path] = position{n.Line, n.Column}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	switch v.Type() {
	case durationType:
		d.duration(n, v, path)
		return
	case stringListType:
		d.stringList(n, v, path)
		return
	case errorRoutesType:
		d.errorRoutes(n, v, path)
		return
	case rawMessageType:
		if val, ok := d.jsonValue(n, path); ok {
			b, err := json.Marshal(val)
			if err != nil {
				d.failf(path, "cannot be encoded as JSON: %v", err)
				return
			}
			v.SetBytes(b)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.failf(path, "must be a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), child(path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.stringMap(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Int:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || i != int64(int(i)) {
			d.failf(path, "must be an integer")
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil {
			d.failf(path, "must be a number")
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.failf(path, "must be a finite number")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.failf(path, "must be true or false")
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("definition: no decoder for %s", v.Type()))
	}
}

// scalar returns the text of a scalar. Any scalar is accepted as a string,
// so "id: 007" is the id "007".
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.failf(path, "must be a string")
		return "", false
	}
	return n.Value, true
}

// mapping decodes a mapping into the struct v by the fields' yaml names.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.failf(path, "must be a mapping")
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		at := &position{k.Line, k.Column}
		if k.Kind != yaml.ScalarNode {
			d.issues = append(d.issues, issue{path: path, message: "keys must be strings", at: at})
			continue
		}
		name := k.Value
		if seen[name] {
			d.issues = append(d.issues, issue{path: child(path, name), message: "duplicate field", at: at})
			continue
		}
		seen[name] = true
		index, ok := fields[name]
		if !ok {
			d.issues = append(d.issues, issue{path: child(path, name), message: unknownField(name, fields), at: at})
			continue
		}
		d.value(val, v.Field(index), child(path, name))
	}
}

// fieldCache holds yamlFields' results by type.
var fieldCache sync.Map // reflect.Type -> map[string]int

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	if fields, ok := fieldCache.Load(t); ok {
		return fields.(map[string]int)
	}
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		fields[name] = i
	}
	fieldCache.Store(t, fields)
	return fields
}

// unknownField says that name is not a field, suggesting a close one.
func unknownField(name string, fields map[string]int) string {
	if best := closest(name, slices.Sorted(maps.Keys(fields))); best != "" {
		return fmt.Sprintf("unknown field (did you mean %q?)", best)
	}
	return "unknown field"
}

// closest returns the first candidate nearest to name if it is near enough
// to be a likely typo, else "". Case is ignored.
func closest(name string, candidates []string) string {
	limit := min(2, max(1, len(name)/3))
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
// Strings much longer than field names are simply "far".
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// duration decodes a Go or ISO 8601 duration string.
func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.failf(path, "must be a duration such as 30s or PT30S")
		return
	}
	if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
		d.failf(path, "must be a duration with a unit, such as 30s or PT30S, not a bare number")
		return
	}
	dur, err := parseDuration(n.Value)
	if err != nil {
		d.failf(path, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

// stringList decodes a string or a list of strings.
func (d *decoder) stringList(n *yaml.Node, v reflect.Value, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		v.Set(reflect.ValueOf(StringList{n.Value}))
		d.positions[child(path, 0)] = position{n.Line, n.Column}
	case yaml.SequenceNode:
		list := make(StringList, 0, len(n.Content))
		for i, c := range n.Content {
			p := child(path, i)
			d.positions[p] = position{c.Line, c.Column}
			if c.Kind != yaml.ScalarNode || c.ShortTag() == "!!null" {
				d.failf(p, "must be a string")
				continue
			}
			list = append(list, c.Value)
		}
		v.Set(reflect.ValueOf(list))
	default:
		d.failf(path, "must be a string or a list of strings")
	}
}

// errorRoutes decodes onError: a step id or a list of them, which is one
// route without codes, or a list of routes. In the short form the step ids
// are where the compiler looks for them, at path.0, path.1...; a list of
// one route without codes is given the same positions.
func (d *decoder) errorRoutes(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		return
	}
	short := n.Kind == yaml.ScalarNode
	if n.Kind == yaml.SequenceNode {
		short = !slices.ContainsFunc(n.Content, func(c *yaml.Node) bool { return c.Kind != yaml.ScalarNode })
	}
	if short {
		var ids StringList
		d.stringList(n, reflect.ValueOf(&ids).Elem(), path)
		v.Set(reflect.ValueOf(ErrorRoutes{{Next: ids}}))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.failf(path, "must be a step id, a list of step ids or a list of routes")
		return
	}
	routes := make(ErrorRoutes, len(n.Content))
	for i, c := range n.Content {
		p := child(path, i)
		if c.Kind != yaml.MappingNode {
			d.positions[p] = position{c.Line, c.Column}
			d.failf(p, "must be a route such as {codes: [card_declined], next: ask-new-card}; write every element as a route, not a step id")
			continue
		}
		d.value(c, reflect.ValueOf(&routes[i]).Elem(), p)
	}
	v.Set(reflect.ValueOf(routes))
	if routes.short() {
		for j := range routes[0].Next {
			if pos, ok := d.positions[child(child(child(path, 0), "next"), j)]; ok {
				d.positions[child(path, j)] = pos
			}
		}
	}
}

// stringMap decodes a mapping of strings to strings.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.failf(path, "must be a mapping")
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		at := &position{k.Line, k.Column}
		if k.Kind != yaml.ScalarNode {
			d.issues = append(d.issues, issue{path: path, message: "keys must be strings", at: at})
			continue
		}
		p := child(path, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.issues = append(d.issues, issue{path: p, message: "duplicate key", at: at})
			continue
		}
		d.positions[p] = position{val.Line, val.Column}
		if val.Kind != yaml.ScalarNode || val.ShortTag() == "!!null" {
			d.failf(p, "must be a string")
			continue
		}
		m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
}

// jsonValue converts a node into a value encoding/json can marshal.
func (d *decoder) jsonValue(n *yaml.Node, path string) (any, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.issues = append(d.issues, issue{path: path, message: "keys must be strings", at: &position{k.Line, k.Column}})
				ok = false
				continue
			}
			p := child(path, k.Value)
			if _, dup := m[k.Value]; dup {
				d.issues = append(d.issues, issue{path: p, message: "duplicate key", at: &position{k.Line, k.Column}})
				ok = false
				continue
			}
			d.positions[p] = position{val.Line, val.Column}
			v, good := d.jsonValue(val, p)
			m[k.Value] = v
			ok = ok && good
		}
		return m, ok
	case yaml.SequenceNode:
		list := make([]any, len(n.Content))
		ok := true
		for i, c := range n.Content {
			p := child(path, i)
			d.positions[p] = position{c.Line, c.Column}
			v, good := d.jsonValue(c, p)
			list[i] = v
			ok = ok && good
		}
		return list, ok
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!bool", "!!int", "!!float":
			var v any
			if err := n.Decode(&v); err != nil {
				d.failf(path, "invalid value: %v", err)
				return nil, false
			}
			if f, isFloat := v.(float64); isFloat && (math.IsNaN(f) || math.IsInf(f, 0)) {
				d.failf(path, "must be a finite number")
				return nil, false
			}
			return v, true
		}
		return n.Value, true
	}
	d.failf(path, "unsupported YAML value")
	return nil, false
}
