package main

import (
	"bufio"
	"fmt"
	"go/token"
	"io"
	"strconv"
	"strings"
)

// A decl is one top-level entry of a schema file: an enum, a struct, or a free-standing
// comment (a "//" block followed by a blank line), kept in file order.
type decl struct {
	line   int
	doc    []string // "//" lines as written; the Go doc comment, or the comment itself
	kind   string   // "enum", "struct" or "comment"
	name   string
	like   string // for "struct A = B": B, whose layout and codec A shares
	values []enumValue
	fields []field
}

// An enumValue is one member line of an enum: "0 FilterNone FT_NO_FILTER".
type enumValue struct {
	num    int
	goName string
	wire   string // the Pegasus name String returns
}

// A field is one member line of a struct: "3 ExpireTSSeconds i32 optional // comment".
type field struct {
	line     int
	id       int16
	name     string
	typ      string // as written: "i32", "list<blob>", "AppInfo"
	optional bool
	def      string // default value, "" if none
	reuse    bool   // decoding keeps the previous string when the bytes are equal
	comment  string
}

// wrapped reports whether the field is held in an Optional: optional fields without a
// default. An optional field with a default is a plain value written only when it differs
// from the default.
func (f *field) wrapped() bool { return f.optional && f.def == "" }

// schema is one parsed schema file.
type schema struct {
	file  string
	decls []*decl
}

// parse reads one schema file. Errors name the file and line.
func parse(file string, r io.Reader) (*schema, error) {
	s := &schema{file: file}
	var doc []string
	var cur *decl // the enum or struct whose members follow
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t")
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", file, n, fmt.Sprintf(format, args...))
		}
		trimmed := strings.TrimLeft(line, " \t")
		switch {
		case strings.HasPrefix(trimmed, "#"):
			continue
		case line == "":
			if len(doc) > 0 {
				s.decls = append(s.decls, &decl{line: n, kind: "comment", doc: doc})
				doc = nil
			}
			continue
		case strings.HasPrefix(line, "//"):
			doc = append(doc, line)
			continue
		case trimmed != line: // indented: a member of cur
			if cur == nil || cur.like != "" || len(doc) > 0 {
				return nil, fail("member line outside an enum or struct (or after a // line)")
			}
			var err error
			if cur.kind == "enum" {
				err = cur.addValue(trimmed)
			} else {
				err = cur.addField(n, trimmed)
			}
			if err != nil {
				return nil, fail("%v", err)
			}
			continue
		}
		d, err := parseDecl(line)
		if err != nil {
			return nil, fail("%v", err)
		}
		d.line, d.doc, doc = n, doc, nil
		s.decls = append(s.decls, d)
		cur = d
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc) > 0 {
		s.decls = append(s.decls, &decl{kind: "comment", doc: doc})
	}
	return s, nil
}

// parseDecl parses "enum Name", "struct Name" or "struct Name = Other".
func parseDecl(line string) (*decl, error) {
	w := strings.Fields(line)
	switch {
	case len(w) == 2 && (w[0] == "enum" || w[0] == "struct"):
	case len(w) == 4 && w[0] == "struct" && w[2] == "=":
	default:
		return nil, fmt.Errorf("want \"enum Name\", \"struct Name\" or \"struct Name = Other\", got %q", line)
	}
	d := &decl{kind: w[0], name: w[1]}
	if len(w) == 4 {
		d.like = w[3]
	}
	if !token.IsExported(d.name) || !token.IsIdentifier(d.name) {
		return nil, fmt.Errorf("%q is not an exported Go name", d.name)
	}
	return d, nil
}

// addValue parses an enum member "NUM GoName WIRE_NAME". Values must count up from 0, as
// the names table String indexes is dense.
func (d *decl) addValue(line string) error {
	w := strings.Fields(line)
	if len(w) != 3 {
		return fmt.Errorf("want \"number GoName WIRE_NAME\", got %q", line)
	}
	num, err := strconv.Atoi(w[0])
	if err != nil || num != len(d.values) {
		return fmt.Errorf("enum value %q: want %d (values count up from 0)", w[0], len(d.values))
	}
	if !token.IsExported(w[1]) || !token.IsIdentifier(w[1]) {
		return fmt.Errorf("%q is not an exported Go name", w[1])
	}
	d.values = append(d.values, enumValue{num, w[1], w[2]})
	return nil
}

// addField parses a struct member "ID Name type [optional] [default=V] [reuse] [// comment]".
func (d *decl) addField(n int, line string) error {
	code, comment, _ := strings.Cut(line, "//")
	w := strings.Fields(code)
	if len(w) < 3 {
		return fmt.Errorf("want \"id Name type [optional] [default=V] [reuse]\", got %q", line)
	}
	id, err := strconv.ParseInt(w[0], 10, 16)
	if err != nil || id <= 0 {
		return fmt.Errorf("field id %q: want a number from 1 to 32767", w[0])
	}
	f := field{line: n, id: int16(id), name: w[1], typ: w[2], comment: strings.TrimSpace(comment)}
	if !token.IsExported(f.name) || !token.IsIdentifier(f.name) {
		return fmt.Errorf("%q is not an exported Go name", f.name)
	}
	for _, flag := range w[3:] {
		switch v, ok := strings.CutPrefix(flag, "default="); {
		case flag == "optional":
			f.optional = true
		case flag == "reuse":
			f.reuse = true
		case ok && v != "":
			f.def = v
		default:
			return fmt.Errorf("unknown field flag %q", flag)
		}
	}
	for _, g := range d.fields {
		if g.id == f.id || g.name == f.name {
			return fmt.Errorf("field %d %s repeats field %d %s", f.id, f.name, g.id, g.name)
		}
	}
	d.fields = append(d.fields, f)
	return nil
}
