package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// parseAll parses and checks schema files given as name → text, in name order.
func parseAll(files ...string) (*generator, []*schema, error) {
	var schemas []*schema
	for i := 0; i < len(files); i += 2 {
		s, err := parse(files[i], strings.NewReader(files[i+1]))
		if err != nil {
			return nil, nil, err
		}
		schemas = append(schemas, s)
	}
	g, err := newGenerator(schemas)
	return g, schemas, err
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		schema string
		want   string // the error must contain this: file:line and the reason
	}{
		{"unknown declaration", "strukt A\n", "x.schema:1: want \"enum Name\""},
		{"unexported name", "struct a\n", "x.schema:1: \"a\" is not an exported Go name"},
		{"member before any declaration", "\t1 A i32\n", "x.schema:1: member line outside"},
		{"member after a comment", "struct A\n// doc\n\t1 B i32\n", "x.schema:3: member line outside"},
		{"member of an alias", "struct A\nstruct B = A\n\t1 C i32\n", "x.schema:3: member line outside"},
		{"field id not a number", "struct A\n\tx B i32\n", "x.schema:2: field id \"x\""},
		{"field id zero", "struct A\n\t0 B i32\n", "x.schema:2: field id \"0\""},
		{"field id too large", "struct A\n\t40000 B i32\n", "x.schema:2: field id \"40000\""},
		{"field without a type", "struct A\n\t1 B\n", "x.schema:2: want \"id Name type"},
		{"repeated field id", "struct A\n\t1 B i32\n\t1 C i32\n", "x.schema:3: field 1 C repeats field 1 B"},
		{"repeated field name", "struct A\n\t1 B i32\n\t2 B i32\n", "x.schema:3: field 2 B repeats"},
		{"unknown flag", "struct A\n\t1 B i32 opt\n", "x.schema:2: unknown field flag \"opt\""},
		{"enum value gap", "enum E\n\t0 A X\n\t2 B Y\n", "x.schema:3: enum value \"2\": want 1"},
		{"enum member shape", "enum E\n\t0 A\n", "x.schema:2: want \"number GoName WIRE_NAME\""},
		{"empty enum", "# nothing\nenum E\n", "x.schema:2: enum E has no values"},
		{"unknown type", "struct A\n\t1 B i32\n\t2 C i8\n", "x.schema:3: C: unknown type \"i8\""},
		{"unknown list element", "struct A\n\t1 B list<Nope>\n", "x.schema:2: B: unknown type \"Nope\""},
		{"list of lists", "struct A\n\t1 B list<list<i32>>\n", "x.schema:2: B: list<list<i32>>: lists of"},
		{"optional map", "struct A\n\t1 B map<string,string> optional\n", "x.schema:2: B: an optional map"},
		{"map key type", "struct A\n\t1 B map<bool,i32>\n", "x.schema:2: B: map<bool,i32>: map keys must be"},
		{"unknown map value", "struct A\n\t1 B map<i32,Nope>\n", "x.schema:2: B: unknown type \"Nope\""},
		{"string map in a map", "struct A\n\t1 B map<i32,map<string,string>>\n", "x.schema:2: B: map<i32,map<string,string>>: map<string,string> is not"},
		{"reuse on a non-string", "struct A\n\t1 B i32 reuse\n", "x.schema:2: B: reuse applies"},
		{"reuse on an optional string", "struct A\n\t1 B string optional reuse\n", "x.schema:2: B: reuse applies"},
		{"default not a number", "struct A\n\t1 B i32 default=x\n", "x.schema:2: B: default \"x\" is not an i32"},
		{"default out of range", "struct A\n\t1 B i32 default=3000000000\n", "x.schema:2: B: default"},
		{"default on a string", "struct A\n\t1 B string default=x\n", "x.schema:2: B: default \"x\": defaults are supported"},
		{"alias of an enum", "enum E\n\t0 A X\nstruct B = E\n", "x.schema:3: B = E: E is not a struct"},
		{"declared twice", "struct A\nenum A\n\t0 B X\n", "x.schema:2: A is declared twice"},
		{"built-in name", "struct gpid\n", "x.schema:1: \"gpid\" is not an exported Go name"},
		{"struct containing itself", "struct A\n\t1 B C optional\nstruct C\n\t1 D A\n", "x.schema:1: struct A contains itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseAll("x.schema", tc.schema)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	_, schemas, err := parseAll("x.schema", `# a schema comment, dropped
// A free-standing comment.

// A is a struct.
struct A
	1 B i32 default=-1 // a comment
	3 C bool optional default=false

	4 D string reuse
	5 E list<F> optional
struct G = A
struct F
`)
	if err != nil {
		t.Fatal(err)
	}
	ds := schemas[0].decls
	if got := len(ds); got != 4 {
		t.Fatalf("%d declarations, want 4", got)
	}
	if ds[0].kind != "comment" || !reflect.DeepEqual(ds[0].doc, []string{"// A free-standing comment."}) {
		t.Errorf("comment: %+v", ds[0])
	}
	want := []field{
		{line: 6, id: 1, name: "B", typ: "i32", def: "-1", comment: "a comment"},
		{line: 7, id: 3, name: "C", typ: "bool", optional: true, def: "false"},
		{line: 9, id: 4, name: "D", typ: "string", reuse: true},
		{line: 10, id: 5, name: "E", typ: "list<F>", optional: true},
	}
	if a := ds[1]; a.name != "A" || a.line != 5 || !reflect.DeepEqual(a.doc, []string{"// A is a struct."}) ||
		!reflect.DeepEqual(a.fields, want) {
		t.Errorf("struct A: %+v\nwant fields %+v", a, want)
	}
	if g := ds[2]; g.name != "G" || g.like != "A" || g.fields != nil {
		t.Errorf("struct G: %+v", g)
	}
}

// TestGenerate checks the shape of the code for each kind of field, on a small schema.
func TestGenerate(t *testing.T) {
	g, schemas, err := parseAll("x.schema", `enum E
	0 EZero ZERO
	1 EOne  ONE
struct S
	1 A i32 default=-1
	2 B E optional
	3 C list<blob>
	4 D bool optional default=false
	5 F string reuse
struct T
	1 S S
	2 H host_port optional
`)
	if err != nil {
		t.Fatal(err)
	}
	src, err := g.generate(schemas[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"// Code generated by internal/idl/gen from x.schema. DO NOT EDIT.\n",
		"\tEOne  E = 1\n",
		`func (v E) String() string { return enumName(eNames, "E", int32(v)) }`,
		"\tB Optional[E] // 2\n",
		"func NewS() S { return S{A: -1} }",
		"\tif r.B.Set {\n\t\te.FieldBegin(TypeI32, 2)\n\t\te.I32(int32(r.B.V))\n\t}\n",
		"\tif r.D {\n\t\te.FieldBegin(TypeBool, 4)\n",
		"\t\t\tif d.Want(t, TypeI32) {\n\t\t\t\tr.B = Some(E(d.I32()))\n",
		"\t\t\tif n, ok := d.list(t, TypeStruct, 4); ok {\n\t\t\t\tl := make([][]byte, n)\n",
		"\tprevF := r.F\n\t*r = NewS()\n",
		"\t\t\t\tr.F = d.stringReuse(prevF)\n",
		"\t*r = T{S: NewS()}\n",
		"\t\t\t\tr.H.Set = true\n\t\t\t\tr.H.V.Decode(d)\n",
	} {
		if !bytes.Contains(src, []byte(want)) {
			t.Errorf("generated code lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("generated:\n%s", src)
	}
}

// TestGeneratedFilesUpToDate regenerates the package's codecs and compares them with the
// files checked in beside the schemas.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "*.schema"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema files: %v", err)
	}
	schemas, err := load(files)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGenerator(schemas)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range schemas {
		src, err := g.generate(s)
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(outputName(s.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, have) {
			t.Errorf("%s is stale: run go generate ./internal/idl", outputName(s.file))
		}
	}
}
