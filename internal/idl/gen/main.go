// Command gen writes the thrift binary-protocol codecs of package idl from its schema files.
// go generate runs it in internal/idl:
//
//	go run ./gen rrdb.schema meta.schema
//
// For each NAME.schema it writes NAME_gen.go beside it. All files are read before any is
// written, so one file may use the types another declares. The schema format is described in
// the package documentation of idl.
//
// The generator has three parts: schema.go parses the text into declarations, gen.go's
// kinds say how each schema type is declared, written and read, and gen.go's generate
// prints one Go file per schema from those.
package main

import (
	"fmt"
	"log"
	"os"
	"strings"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("gen: ")
	if err := run(os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

func run(files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("usage: gen NAME.schema...")
	}
	schemas, err := load(files)
	if err != nil {
		return err
	}
	g, err := newGenerator(schemas)
	if err != nil {
		return err
	}
	for _, s := range schemas {
		src, err := g.generate(s)
		if err != nil {
			return fmt.Errorf("%s: formatting the generated code: %w", s.file, err)
		}
		if err := os.WriteFile(outputName(s.file), src, 0o666); err != nil {
			return err
		}
	}
	return nil
}

// load parses the schema files.
func load(files []string) ([]*schema, error) {
	var schemas []*schema
	for _, name := range files {
		if !strings.HasSuffix(name, ".schema") {
			return nil, fmt.Errorf("%s: want a NAME.schema file", name)
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		s, err := parse(name, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		schemas = append(schemas, s)
	}
	return schemas, nil
}

// outputName is the Go file generated from schema file name.
func outputName(name string) string { return strings.TrimSuffix(name, ".schema") + "_gen.go" }
