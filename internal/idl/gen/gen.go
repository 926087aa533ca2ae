package main

import (
	"bytes"
	"fmt"
	"go/format"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// A kind says how values of one schema type look in Go and on the wire.
type kind struct {
	goType string // Go type of a field
	wire   string // Type constant of its field header, or of a list header for elements
	min    int    // fewest bytes one value occupies on the wire; bounds list counts
	write  string // statement appending the value %s to e
	read   string // expression reading one value from d; "" when decoded in place by Decode
	elem   *kind  // for a list: the element kind
	// helper names the generated enc<helper>/dec<helper> pair that writes and reads a value
	// of a container kind nested in a map (a general map, or a list inside one); "" for
	// every other kind. key is a map's key kind.
	helper string
	key    *kind
	schema string // the schema type as written, for the helper's doc
}

// builtin are the schema's built-in types. The last five are the Pegasus placeholder types
// (protocol.md §1.8): a STRUCT type byte over a raw value with no field headers and no STOP.
var builtin = map[string]kind{
	"bool":               {goType: "bool", wire: "TypeBool", min: 1, write: "e.Bool(%s)", read: "d.Bool()"},
	"i32":                {goType: "int32", wire: "TypeI32", min: 4, write: "e.I32(%s)", read: "d.I32()"},
	"i64":                {goType: "int64", wire: "TypeI64", min: 8, write: "e.I64(%s)", read: "d.I64()"},
	"string":             {goType: "string", wire: "TypeString", min: 4, write: "e.String(%s)", read: "d.String()"},
	"map<string,string>": {goType: "map[string]string", wire: "TypeMap"}, // Encoder/Decoder.stringMap
	"blob":               {goType: "[]byte", wire: "TypeStruct", min: 4, write: "e.Binary(%s)", read: "d.Binary()"},
	"error_code":         {goType: "ErrorCode", wire: "TypeStruct", min: 4, write: "e.String(string(%s))", read: "ErrorCode(d.String())"},
	"gpid":               {goType: "GPID", wire: "TypeStruct", min: 8, write: "%s.Encode(e)"},
	"rpc_address":        {goType: "RPCAddress", wire: "TypeStruct", min: 8, write: "%s.Encode(e)"},
	"host_port":          {goType: "HostPort", wire: "TypeStruct", min: 7, write: "%s.Encode(e)"},
	// byte is thrift's signed 8-bit integer; task_code is the placeholder holding an RPC
	// name as a thrift string.
	"byte":      {goType: "int8", wire: "TypeByte", min: 1, write: "e.Byte(byte(%s))", read: "int8(d.Byte())"},
	"task_code": {goType: "string", wire: "TypeStruct", min: 4, write: "e.String(%s)", read: "d.String()"},
}

// mapKeys are the key types a general map may have: what thrift peers use as keys and Go
// can sort, so that a map encodes the same way every time.
var mapKeys = map[string]bool{"i32": true, "i64": true, "string": true, "gpid": true}

// generator holds every declaration of every schema file read, so that one file may use
// the types of another.
type generator struct {
	decls map[string]*decl
	// helpers lists, per schema file, the container kinds whose enc/dec helpers its
	// generated file holds: each helper is written once, into the first file that uses it.
	helpers map[string][]kind
}

// newGenerator indexes and checks the schemas. Errors name the file and line.
func newGenerator(schemas []*schema) (*generator, error) {
	g := &generator{decls: map[string]*decl{}, helpers: map[string][]kind{}}
	for _, s := range schemas {
		for _, d := range s.decls {
			if d.kind == "comment" {
				continue
			}
			if g.decls[d.name] != nil {
				return nil, fmt.Errorf("%s:%d: %s is declared twice", s.file, d.line, d.name)
			}
			g.decls[d.name] = d
		}
	}
	for _, s := range schemas {
		for _, d := range s.decls {
			if err := g.check(d); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", s.file, d.line, err)
			}
			for _, f := range d.fields {
				if err := g.checkField(f); err != nil {
					return nil, fmt.Errorf("%s:%d: %s: %w", s.file, f.line, f.name, err)
				}
			}
		}
	}
	owned := map[string]bool{}
	for _, s := range schemas {
		for _, d := range s.decls {
			for _, f := range d.fields {
				k, _ := g.kindOf(f.typ)
				g.collectHelpers(s.file, k, owned)
			}
		}
	}
	return g, nil
}

// collectHelpers records the helpers k needs (its own and those of the kinds inside it) as
// owned by file, unless a file before it owns them.
func (g *generator) collectHelpers(file string, k kind, owned map[string]bool) {
	if k.key != nil {
		g.collectHelpers(file, *k.key, owned)
	}
	if k.elem != nil {
		g.collectHelpers(file, *k.elem, owned)
	}
	if k.helper != "" && !owned[k.helper] {
		owned[k.helper] = true
		g.helpers[file] = append(g.helpers[file], k)
	}
}

func (g *generator) check(d *decl) error {
	switch {
	case d.kind == "enum" && len(d.values) == 0:
		return fmt.Errorf("enum %s has no values", d.name)
	case d.like != "" && (g.decls[d.like] == nil || g.decls[d.like].kind != "struct"):
		return fmt.Errorf("%s = %s: %s is not a struct", d.name, d.like, d.like)
	case d.kind == "struct" && g.contains(d, d.name, 0):
		return fmt.Errorf("struct %s contains itself outside a list", d.name)
	}
	return nil
}

// contains reports whether struct d holds a struct named name, other than through a list.
func (g *generator) contains(d *decl, name string, depth int) bool {
	for _, f := range d.fields {
		if s := g.decls[f.typ]; s != nil && s.kind == "struct" {
			if f.typ == name || depth < len(g.decls) && g.contains(s, name, depth+1) {
				return true
			}
		}
	}
	return false
}

func (g *generator) checkField(f field) error {
	k, err := g.kindOf(f.typ)
	if err != nil {
		return err
	}
	switch {
	case f.optional && k.wire == "TypeMap" && k.helper == "":
		return fmt.Errorf("an optional map is not supported")
	case f.reuse && (f.optional || f.typ != "string"):
		return fmt.Errorf("reuse applies to plain string fields only")
	case f.def != "":
		if _, err := literal(f.typ, f.def); err != nil {
			return err
		}
	}
	return nil
}

// kindOf resolves a schema type: a built-in, "list<elem>", or an enum or struct name.
func (g *generator) kindOf(typ string) (kind, error) {
	if k, ok := builtin[typ]; ok {
		return k, nil
	}
	if e, ok := strings.CutPrefix(typ, "list<"); ok && strings.HasSuffix(e, ">") {
		ek, err := g.kindOf(strings.TrimSuffix(e, ">"))
		if err != nil {
			return kind{}, err
		}
		if ek.elem != nil || ek.wire == "TypeMap" {
			return kind{}, fmt.Errorf("%s: lists of lists or maps are not supported", typ)
		}
		return kind{goType: "[]" + ek.goType, wire: "TypeList", min: 5, elem: &ek, schema: typ}, nil
	}
	if kv, ok := strings.CutPrefix(typ, "map<"); ok && strings.HasSuffix(kv, ">") {
		kt, vt, ok := splitMapTypes(strings.TrimSuffix(kv, ">"))
		if !ok || !mapKeys[kt] {
			return kind{}, fmt.Errorf("%s: map keys must be i32, i64, string or gpid", typ)
		}
		key, _ := g.kindOf(kt)
		val, err := g.kindOf(vt)
		if err != nil {
			return kind{}, err
		}
		if val.wire == "TypeMap" && val.helper == "" {
			return kind{}, fmt.Errorf("%s: map<string,string> is not supported inside a map", typ)
		}
		if val.wire == "TypeList" {
			val.helper = mangle(vt) // a list inside a map is read and written by helpers too
		}
		h := mangle(typ)
		return kind{goType: "map[" + key.goType + "]" + val.goType, wire: "TypeMap", min: 6, key: &key, elem: &val,
			schema: typ, helper: h, write: "enc" + h + "(e, %s)", read: "dec" + h + "(d)"}, nil
	}
	switch d := g.decls[typ]; {
	case d == nil:
		return kind{}, fmt.Errorf("unknown type %q", typ)
	case d.kind == "enum":
		return kind{goType: typ, wire: "TypeI32", min: 4, write: "e.I32(int32(%s))", read: typ + "(d.I32())"}, nil
	default:
		return kind{goType: typ, wire: "TypeStruct", min: 1, write: "%s.Encode(e)"}, nil
	}
}

// splitMapTypes splits "K,V" at the comma outside angle brackets.
func splitMapTypes(s string) (k, v string, ok bool) {
	depth := 0
	for i, c := range s {
		switch c {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				return s[:i], s[i+1:], true
			}
		}
	}
	return "", "", false
}

// mangle turns a container type into a Go name part: "map<i32,list<A>>" -> "MapI32ListA".
func mangle(typ string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(typ, func(r rune) bool { return r == '<' || r == '>' || r == ',' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// literal returns the Go literal of default value v of a field of type typ.
func literal(typ, v string) (string, error) {
	bits := map[string]int{"i32": 32, "i64": 64}[typ]
	switch {
	case typ == "bool" && (v == "true" || v == "false"):
		return v, nil
	case bits > 0:
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return "", fmt.Errorf("default %q is not an %s", v, typ)
		}
		return strconv.FormatInt(n, 10), nil
	}
	return "", fmt.Errorf("default %q: defaults are supported for bool, i32 and i64 only", v)
}

// isZero reports whether the Go literal v is its type's zero value.
func isZero(v string) bool { return v == "0" || v == "false" }

// printer accumulates Go source, one line per call.
type printer struct{ bytes.Buffer }

func (p *printer) line(format string, args ...any) {
	fmt.Fprintf(&p.Buffer, format, args...)
	p.WriteByte('\n')
}

func (p *printer) doc(lines []string) {
	for _, l := range lines {
		p.line("%s", l)
	}
}

// generate returns the gofmt-ed Go source for schema s.
func (g *generator) generate(s *schema) ([]byte, error) {
	var p printer
	p.line("// Code generated by internal/idl/gen from %s. DO NOT EDIT.", filepath.Base(s.file))
	p.line("")
	p.line("package idl")
	for _, d := range s.decls {
		p.line("")
		switch {
		case d.kind == "comment":
			p.doc(d.doc)
		case d.kind == "enum":
			g.enum(&p, d)
		case d.like != "":
			g.like(&p, d)
		default:
			g.strct(&p, d)
		}
	}
	for _, k := range g.helpers[s.file] {
		p.line("")
		g.helperPair(&p, k)
	}
	return format.Source(p.Bytes())
}

// helperPair writes the encoder and decoder of a container kind nested in a map (or a
// general map field): the container's header and elements, without a field header. The
// decoder returns nil when the header's types are not the schema's (the elements are
// skipped) or the count cannot fit in the bytes left.
func (g *generator) helperPair(p *printer, k kind) {
	h := k.helper
	if k.key != nil {
		p.line("// enc%s appends a %s: header, then entries in key order.", h, k.schema)
	} else {
		p.line("// enc%s appends a %s: header, then elements.", h, k.schema)
	}
	p.line("func enc%s(e *Encoder, v %s) {", h, k.goType)
	if k.key != nil {
		p.line("e.MapBegin(%s, %s, len(v))", k.key.wire, k.elem.wire)
		sorted := "sortedKeys(v)"
		if k.key.goType == "GPID" {
			sorted = "sortedGPIDKeys(v)"
		}
		p.line("for _, k := range %s {", sorted)
		p.line(k.key.write, "k")
		p.line("x := v[k]")
		p.line(g.writeValue(*k.elem), "x")
		p.line("}")
	} else {
		p.line("e.ListBegin(%s, len(v))", k.elem.wire)
		p.line("for i := range v {")
		p.line(g.writeValue(*k.elem), "v[i]")
		p.line("}")
	}
	p.line("}")
	p.line("")
	p.line("// dec%s reads a %s written as enc%s writes it.", h, k.schema, h)
	p.line("func dec%s(d *Decoder) %s {", h, k.goType)
	if k.key != nil {
		p.line("n, ok := d.mapHeader(%s, %s, %d)", k.key.wire, k.elem.wire, max(k.key.min, 1)+max(k.elem.min, 1))
		p.line("if !ok {")
		p.line("return nil")
		p.line("}")
		p.line("m := make(%s, n)", k.goType)
		p.line("for i := 0; i < n && d.err == nil; i++ {")
		p.line("%s", g.readInto("k", *k.key))
		p.line("%s", g.readInto("x", *k.elem))
		p.line("m[k] = x")
		p.line("}")
		p.line("return m")
	} else {
		p.line("n, ok := d.listHeader(%s, %d)", k.elem.wire, max(k.elem.min, 1))
		p.line("if !ok {")
		p.line("return nil")
		p.line("}")
		p.line("l := make(%s, n)", k.goType)
		p.line("for i := 0; i < n && d.err == nil; i++ {")
		p.line("%s", g.readInto("l[i]", *k.elem))
		p.line("}")
		p.line("return l")
	}
	p.line("}")
}

// writeValue is the statement (with %s for the value) appending one value of kind k.
func (g *generator) writeValue(k kind) string {
	if k.helper != "" {
		return "enc" + k.helper + "(e, %s)"
	}
	return k.write
}

// readInto is the statement reading one value of kind k into v (declared with := unless it
// is an element of a slice).
func (g *generator) readInto(v string, k kind) string {
	assign := " = "
	if !strings.Contains(v, "[") {
		assign = " := "
	}
	switch {
	case k.helper != "":
		return v + assign + "dec" + k.helper + "(d)"
	case k.read != "":
		return v + assign + k.read
	case assign == " := ":
		return "var " + v + " " + k.goType + "\n" + v + ".Decode(d)"
	default:
		return v + ".Decode(d)"
	}
}

func (g *generator) enum(p *printer, d *decl) {
	p.doc(d.doc)
	p.line("type %s int32", d.name)
	p.line("")
	p.line("// %s values.", d.name)
	p.line("const (")
	for _, v := range d.values {
		p.line("%s %s = %d", v.goName, d.name, v.num)
	}
	p.line(")")
	names := unexported(d.name) + "Names"
	p.line("")
	p.line("var %s = []string{", names)
	for _, v := range d.values {
		p.line("%q,", v.wire)
	}
	p.line("}")
	p.line("")
	p.line("// String returns the Pegasus name of v (%q, ...), or %q.", d.values[0].wire, d.name+"(n)")
	p.line("func (v %s) String() string { return enumName(%s, %q, int32(v)) }", d.name, names, d.name)
}

// like writes "type A B" for "struct A = B", with methods that use B's codec.
func (g *generator) like(p *printer, d *decl) {
	p.doc(d.doc)
	p.line("type %s %s", d.name, d.like)
	p.line("")
	p.line("// ThriftType implements [Value].")
	p.line("func (*%s) ThriftType() Type { return TypeStruct }", d.name)
	p.line("")
	p.line("// Encode implements [Value].")
	p.line("func (r *%s) Encode(e *Encoder) { (*%s)(r).Encode(e) }", d.name, d.like)
	p.line("")
	p.line("// Decode implements [Value].")
	p.line("func (r *%s) Decode(d *Decoder) { (*%s)(r).Decode(d) }", d.name, d.like)
}

func (g *generator) strct(p *printer, d *decl) {
	kinds := make([]kind, len(d.fields))
	for i, f := range d.fields {
		kinds[i], _ = g.kindOf(f.typ) // checked by newGenerator
	}
	p.doc(d.doc)
	if len(d.fields) == 0 {
		p.line("type %s struct{}", d.name)
	} else {
		p.line("type %s struct {", d.name)
		for i, f := range d.fields {
			typ := kinds[i].goType
			if f.wrapped() {
				typ = "Optional[" + typ + "]"
			}
			comment := strconv.Itoa(int(f.id))
			if f.comment != "" {
				comment += ": " + f.comment
			}
			p.line("%s %s // %s", f.name, typ, comment)
		}
		p.line("}")
	}
	if defs := g.defaults(d); defs != nil {
		p.line("")
		p.line("// New%s returns a new %s holding its defaults (%s).", d.name, d.name, strings.Join(defs, ", "))
		p.line("func New%s() %s { return %s{%s} }", d.name, d.name, d.name, g.inits(d))
	}
	p.line("")
	p.line("// ThriftType implements [Value].")
	p.line("func (*%s) ThriftType() Type { return TypeStruct }", d.name)

	p.line("")
	p.line("// Encode implements [Value].")
	p.line("func (r *%s) Encode(e *Encoder) {", d.name)
	for i, f := range d.fields {
		encodeField(p, f, kinds[i])
	}
	p.line("e.FieldStop()")
	p.line("}")

	p.line("")
	p.line("// Decode implements [Value].")
	p.line("func (r *%s) Decode(d *Decoder) {", d.name)
	for _, f := range d.fields {
		if f.reuse {
			p.line("prev%s := r.%s", f.name, f.name)
		}
	}
	p.line("*r = %s", g.zero(d.name))
	if len(d.fields) == 0 {
		p.line("d.Skip(TypeStruct) // every field is unknown")
		p.line("}")
		return
	}
	p.line("if !d.Enter() {")
	p.line("return")
	p.line("}")
	p.line("defer d.Leave()")
	p.line("for {")
	p.line("t, id := d.FieldBegin()")
	p.line("if t == TypeStop {")
	p.line("return")
	p.line("}")
	p.line("switch id {")
	for i, f := range d.fields {
		p.line("case %d:", f.id)
		decodeField(p, f, kinds[i])
	}
	p.line("default:")
	p.line("d.Skip(t)")
	p.line("}")
	p.line("}")
	p.line("}")
}

// defaults lists "Name value" for each field of d with a non-zero default, or nil.
func (g *generator) defaults(d *decl) []string {
	var defs []string
	for _, f := range d.fields {
		if v, _ := literal(f.typ, f.def); f.def != "" && !isZero(v) {
			defs = append(defs, f.name+" "+v)
		}
	}
	return defs
}

// inits returns the keyed elements of a fresh struct d's literal: non-zero defaults, and the
// fresh value of each struct field whose type has defaults.
func (g *generator) inits(d *decl) string {
	var parts []string
	for _, f := range d.fields {
		if v, _ := literal(f.typ, f.def); f.def != "" && !isZero(v) {
			parts = append(parts, f.name+": "+v)
		} else if s := g.decls[f.typ]; !f.optional && s != nil && s.kind == "struct" {
			if z := g.zero(f.typ); z != f.typ+"{}" {
				parts = append(parts, f.name+": "+z)
			}
		}
	}
	return strings.Join(parts, ", ")
}

// zero returns the expression of a fresh struct name, as Decode starts from: its
// constructor when it has defaults.
func (g *generator) zero(name string) string {
	d := g.decls[name]
	switch {
	case d.like != "":
		if z := g.zero(d.like); z != d.like+"{}" {
			return name + "(" + z + ")"
		}
		return name + "{}"
	case g.defaults(d) != nil:
		return "New" + name + "()"
	}
	return name + "{" + g.inits(d) + "}"
}

func encodeField(p *printer, f field, k kind) {
	v := "r." + f.name
	switch {
	case f.wrapped():
		p.line("if %s.Set {", v)
		v += ".V"
	case f.optional && f.def == "false":
		p.line("if %s {", v)
	case f.optional:
		p.line("if %s != %s {", v, f.def)
	}
	switch {
	case k.wire == "TypeMap" && k.helper != "":
		p.line("e.FieldBegin(TypeMap, %d)", f.id)
		p.line(k.write, v)
	case k.wire == "TypeMap":
		p.line("e.stringMap(%d, %s)", f.id, v)
	case k.elem != nil:
		p.line("e.FieldBegin(TypeList, %d)", f.id)
		p.line("e.ListBegin(%s, len(%s))", k.elem.wire, v)
		p.line("for i := range %s {", v)
		p.line(k.elem.write, v+"[i]")
		p.line("}")
	default:
		p.line("e.FieldBegin(%s, %d)", k.wire, f.id)
		p.line(k.write, v)
	}
	if f.optional {
		p.line("}")
	}
}

func decodeField(p *printer, f field, k kind) {
	v := "r." + f.name
	switch {
	case k.wire == "TypeMap" && k.helper != "":
		p.line("if d.Want(t, TypeMap) {")
		if f.wrapped() {
			p.line("if m := %s; m != nil {", k.read)
			p.line("%s = Some(m)", v)
			p.line("}")
		} else {
			p.line("%s = %s", v, k.read)
		}
		p.line("}")
		return
	case k.wire == "TypeMap":
		p.line("%s = d.stringMap(t)", v)
		return
	case k.elem != nil:
		p.line("if n, ok := d.list(t, %s, %d); ok {", k.elem.wire, k.elem.min)
		p.line("l := make(%s, n)", k.goType)
		if k.elem.read != "" {
			p.line("for i := range l {")
			p.line("l[i] = %s", k.elem.read)
		} else {
			p.line("for i := 0; i < n && d.err == nil; i++ {")
			p.line("l[i].Decode(d)")
		}
		p.line("}")
		if f.wrapped() {
			p.line("%s = Some(l)", v)
		} else {
			p.line("%s = l", v)
		}
		p.line("}")
		return
	}
	p.line("if d.Want(t, %s) {", k.wire)
	switch {
	case k.read == "" && f.wrapped():
		p.line("%s.Set = true", v)
		p.line("%s.V.Decode(d)", v)
	case k.read == "":
		p.line("%s.Decode(d)", v)
	case f.reuse:
		p.line("%s = d.stringReuse(prev%s)", v, f.name)
	case f.wrapped():
		p.line("%s = Some(%s)", v, k.read)
	default:
		p.line("%s = %s", v, k.read)
	}
	p.line("}")
}

// unexported lowers the leading capitals of a Go name: "CASCheckType" -> "casCheckType".
func unexported(name string) string {
	r := []rune(name)
	for i := range r {
		if !unicode.IsUpper(r[i]) || i > 0 && i+1 < len(r) && unicode.IsLower(r[i+1]) {
			break
		}
		r[i] = unicode.ToLower(r[i])
	}
	return string(r)
}
