package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a problem in a config file, located well enough for an operator
// to fix it without reading Go type names.
type Error struct {
	File string
	Line int // 0 when the problem has no single line, e.g. an empty file
	Msg  string
}

func (e *Error) Error() string {
	// One line always: values quoted from the file may hold line breaks.
	e = &Error{File: e.File, Line: e.Line, Msg: lineBreaks.Replace(e.Msg)}
	switch {
	case e.File == "" && e.Line == 0:
		return e.Msg
	case e.File == "":
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

var lineBreaks = strings.NewReplacer("\r\n", `\n`, "\n", `\n`, "\r", `\r`)

// combine reports the first error and how many were left out, so the result
// still fits on one log line.
func combine(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	first := *errs[0]
	switch n := len(errs) - 1; n {
	case 0:
	case 1:
		first.Msg += " (and 1 more error)"
	default:
		first.Msg += fmt.Sprintf(" (and %d more errors)", n)
	}
	return &first
}

var (
	reSyntax     = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)
	reLine       = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
	reNotFound   = regexp.MustCompile(`(?s)^field (.*) not found in type (\S+)$`)
	reAlreadySet = regexp.MustCompile(`(?s)^field (.*) already set in type (\S+)$`)
	reDupKey     = regexp.MustCompile(`(?s)^mapping key (".*") already defined at line (\d+)$`)
	reQuoted     = regexp.MustCompile("(?s)`[^`]*`")
	reUnmarshal  = regexp.MustCompile("(?s)^cannot unmarshal (\\S+)(?: `(.*)`)? into (\\S+)$")
)

// decodeError turns an error from the strict decoder into a single-line
// *Error. root may be nil when the document did not parse at all.
func decodeError(file string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := reSyntax.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return &Error{File: file, Line: line, Msg: "YAML syntax error: " + m[2]}
		}
		// yaml quotes the offending value, which may be a key.
		return &Error{File: file, Msg: "invalid YAML: " + reQuoted.ReplaceAllString(msg, "a value")}
	}
	idx := indexNodes(root)
	errs := make([]*Error, 0, len(te.Errors))
	for _, s := range te.Errors {
		errs = append(errs, rewriteTypeError(file, idx, s))
	}
	return combine(errs)
}

func rewriteTypeError(file string, idx []located, s string) *Error {
	m := reLine.FindStringSubmatch(s)
	if m == nil {
		return &Error{File: file, Msg: s}
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	e := &Error{File: file, Line: line}

	if m := reNotFound.FindStringSubmatch(msg); m != nil {
		e.Msg = fmt.Sprintf("unknown key %q%s", m[1], where(idx, line, m[1], m[2]))
		if keys := knownKeys(m[2]); keys != "" {
			e.Msg += " (known keys: " + keys + ")"
		}
		return e
	}
	if m := reAlreadySet.FindStringSubmatch(msg); m != nil {
		e.Msg = fmt.Sprintf("duplicate key %q%s", m[1], where(idx, line, m[1], m[2]))
		return e
	}
	if m := reDupKey.FindStringSubmatch(msg); m != nil {
		name, err := strconv.Unquote(m[1])
		if err != nil {
			name = m[1]
		}
		e.Msg = fmt.Sprintf("duplicate key %q%s (first defined on line %s)", name, where(idx, line, name, ""), m[2])
		return e
	}
	if m := reUnmarshal.FindStringSubmatch(msg); m != nil {
		tag, value, goType := m[1], m[2], m[3]
		matches := func(l located) bool {
			return l.val.ShortTag() == tag && (value == "" || l.val.Value == value ||
				(strings.HasSuffix(value, "...") && strings.HasPrefix(l.val.Value, strings.TrimSuffix(value, "..."))))
		}
		// Several values can share a line in flow style; the Go type tells
		// them apart.
		loc, ok := findValue(idx, line, func(l located) bool { return matches(l) && goTypeAt(l.path) == goType })
		if !ok {
			loc, ok = findValue(idx, line, matches)
		}
		// The value is quoted back to help spot the typo, except where it
		// could be an API key.
		got := describeTag(tag)
		if ok && !(isSecretPath(loc.path) && loc.val.Kind == yaml.ScalarNode) {
			got = describeNode(loc.val)
		}
		e.Msg = fmt.Sprintf("expected %s, got %s", describeGoType(goType), got)
		if ok {
			e.Msg = pathLabel(loc.path) + ": " + e.Msg
		}
		return e
	}
	// Our own UnmarshalYAML errors (Duration, URL): attach the key they are
	// about.
	isCustom := func(l located) bool {
		kind, ok := customKinds[goTypeAt(l.path)]
		return ok && strings.Contains(msg, kind)
	}
	loc, ok := findValue(idx, line, func(l located) bool {
		return isCustom(l) && strings.Contains(msg, strconv.Quote(l.val.Value))
	})
	if !ok {
		loc, ok = findValue(idx, line, isCustom)
	}
	e.Msg = msg
	if ok {
		e.Msg = loc.path + ": " + msg
	}
	return e
}

// customKinds are the types with their own UnmarshalYAML, with a word their
// error messages are sure to contain.
var customKinds = map[string]string{"config.URL": "URL", "config.Duration": "duration"}

// goTypeAt returns the name of the Go type that decodes path, in yaml.v3's
// spelling ("int", "config.Caches"), or "" if path is not in the schema.
func goTypeAt(path string) string {
	segs, ok := splitPath(path)
	if !ok {
		return ""
	}
	t := reflect.TypeFor[Config]()
	for _, seg := range segs {
		if seg.isIndex {
			if t.Kind() != reflect.Slice {
				return ""
			}
			t = t.Elem()
			continue
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		f, ok := fieldByYAMLName(t, seg.key)
		if !ok {
			return ""
		}
		t = f.Type
	}
	// yaml.v3 names the pointed-to type: it allocates before decoding.
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.String()
}

func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func isSecretPath(path string) bool { return lastKey(path) == "api_key" }

func pathLabel(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// where names the mapping that holds key name at line, e.g. " in
// projects[1].caches". It falls back to a name derived from the Go type when
// the key cannot be found in the node tree, and to "" when that is unknown
// too.
func where(idx []located, line int, name, goType string) string {
	for _, l := range idx {
		if l.key != nil && l.key.Line == line && l.key.Value == name {
			if p := parentPath(l.path); p != "" {
				return " in " + p
			}
			return " at top level"
		}
	}
	t, ok := typeNames[goType]
	switch {
	case !ok:
		return ""
	case t == "":
		return " at top level"
	}
	return " in " + t
}

var schemaTypes = []reflect.Type{
	reflect.TypeFor[Config](),
	reflect.TypeFor[Peaka](),
	reflect.TypeFor[Project](),
	reflect.TypeFor[Caches](),
	reflect.TypeFor[Exports](),
	reflect.TypeFor[Discover](),
}

// typeNames maps yaml.v3's Go type names to the YAML section they decode.
var typeNames = map[string]string{
	"config.Config":   "",
	"config.Peaka":    "peaka",
	"config.Project":  "project",
	"config.Caches":   "caches",
	"config.Exports":  "exports",
	"config.Discover": "discover",
}

// knownKeys lists the YAML keys of a schema type so a typo can be spotted
// next to the correct spelling.
func knownKeys(goType string) string {
	for _, t := range schemaTypes {
		if t.String() != goType {
			continue
		}
		var keys []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				keys = append(keys, name)
			}
		}
		return strings.Join(keys, ", ")
	}
	return ""
}

func describeGoType(t string) string {
	switch t {
	case "int", "int64", "uint", "uint64":
		return "an integer"
	case "bool":
		return "a boolean (true or false)"
	case "string", "config.Secret":
		return "a string"
	case "[]string":
		return "a list of IDs"
	case "[]config.Project":
		return "a list of projects"
	case "config.Config", "config.Peaka", "config.Project", "config.Caches", "config.Exports":
		return "a mapping"
	}
	return t
}

func describeTag(tag string) string {
	switch tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!null":
		return "nothing"
	}
	return "a " + tag + " value"
}

// located is one node of the document together with its path such as
// projects[1].caches.ids[0]. key is the mapping key node, nil for sequence
// items and the document root.
type located struct {
	path string
	key  *yaml.Node
	val  *yaml.Node
}

// indexNodes lists every node in document order. Aliases are not followed:
// they could loop, and errors are reported where the anchor was defined.
func indexNodes(root *yaml.Node) []located {
	var out []located
	var walk func(path string, key, n *yaml.Node)
	walk = func(path string, key, n *yaml.Node) {
		out = append(out, located{path: path, key: key, val: n})
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				walk(p, k, n.Content[i+1])
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(fmt.Sprintf("%s[%d]", path, i), nil, c)
			}
		}
	}
	if root = documentRoot(root); root != nil {
		walk("", nil, root)
	}
	return out
}

func findValue(idx []located, line int, match func(located) bool) (located, bool) {
	for _, l := range idx {
		if l.val.Line == line && match(l) {
			return l, true
		}
	}
	return located{}, false
}

func documentRoot(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return n.Content[0]
	}
	return n
}

// lookup finds the node for a path like projects[1].caches.ids[0]. It
// returns the mapping key node too (nil for sequence items) because errors
// about a key read better at the key's line than at its value's.
func lookup(root *yaml.Node, path string) (key, val *yaml.Node) {
	val = documentRoot(root)
	segs, ok := splitPath(path)
	if !ok || val == nil {
		return nil, nil
	}
	for _, seg := range segs {
		if seg.isIndex {
			if val.Kind != yaml.SequenceNode || seg.index >= len(val.Content) {
				return nil, nil
			}
			key, val = nil, val.Content[seg.index]
			continue
		}
		if key, val = mappingValue(val, seg.key); val == nil {
			return nil, nil
		}
	}
	return key, val
}

// pathSeg is one step of a path: a mapping key or a sequence index.
type pathSeg struct {
	key     string
	index   int
	isIndex bool
}

// splitPath splits "projects[1].caches.ids[0]" into its steps; "" is the
// root and yields no steps.
func splitPath(path string) ([]pathSeg, bool) {
	var segs []pathSeg
	if path == "" {
		return segs, true
	}
	for part := range strings.SplitSeq(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			segs = append(segs, pathSeg{key: name})
		} else if rest == "" {
			return nil, false // empty step, as in "a..b"
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				return nil, false
			}
			segs = append(segs, pathSeg{index: i, isIndex: true})
			if after != "" && !strings.HasPrefix(after, "[") {
				return nil, false
			}
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return segs, true
}

func mappingValue(n *yaml.Node, name string) (key, val *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// lineOf returns the line of path, or of its nearest ancestor present in
// the file when the key itself is missing (e.g. a project without an id).
func lineOf(root *yaml.Node, path string) int {
	for {
		key, val := lookup(root, path)
		switch {
		case key != nil:
			return key.Line
		case val != nil && path != "":
			return val.Line
		case path == "":
			return 0
		}
		path = parentPath(path)
	}
}

func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

func lastKey(path string) string {
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[i+1:]
	}
	return path
}
