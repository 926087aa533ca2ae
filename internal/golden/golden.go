// Package golden reads the golden vectors of the repository's testdata/vectors: request
// frames captured from the official Go client, each a file of hex text (whitespace between
// the digits is ignored), named NN-RPC_NAME-what.hex; testdata/vectors/README describes them.
// Tests of any package (and of the modules nested in the repository) find them the same way:
//
//	frame := golden.Frame(t, golden.Dir(t), "01") // 01-RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX-...
package golden

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Dir returns the repository's testdata/vectors, the first such directory found from the
// working directory (a test's is its package's) upwards. It fails t when there is none.
func Dir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		v := filepath.Join(d, "testdata", "vectors")
		if st, err := os.Stat(v); err == nil && st.IsDir() {
			return v
		}
		if filepath.Dir(d) == d {
			t.Fatalf("golden: no testdata/vectors above %s", wd)
		}
	}
}

// Decode returns the bytes of hex text: whitespace between the digits is ignored, and a
// "quoted" run stands for its ASCII bytes, the way protocol.md prints bytes
// (`00 00 00 04 "temp"`).
func Decode(text []byte) ([]byte, error) {
	parts := strings.Split(string(text), `"`)
	if len(parts)%2 == 0 {
		return nil, errors.New("golden: unterminated quoted run")
	}
	var out []byte
	for i, part := range parts {
		if i%2 == 1 {
			out = append(out, part...)
			continue
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(part), ""))
		if err != nil {
			return nil, fmt.Errorf("golden: %w", err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// Unhex is [Decode] of a string written in a test; it fails t when s is not hex.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := Decode([]byte(s))
	if err != nil {
		t.Fatalf("%v in %q", err, s)
	}
	return b
}

// Read returns the bytes of the hex file at path; it fails t when the file cannot be read
// or is not hex.
func Read(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// Frame returns the bytes of the vector of dir whose name starts with prefix and a dash
// ("01" for 01-RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX-opentable-temp.hex). It fails t
// unless exactly one file matches.
func Frame(t testing.TB, dir, prefix string) []byte {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, prefix+"-*.hex"))
	if len(matches) != 1 {
		t.Fatalf("golden: %d vectors %s-*.hex in %s, want one", len(matches), prefix, dir)
	}
	return Read(t, matches[0])
}

// Vector is one golden vector: its file name and its bytes.
type Vector struct {
	Name  string
	Frame []byte
}

// All returns every vector of dir (its *.hex files, not those of subdirectories) in name
// order. It fails t when there is none.
func All(t testing.TB, dir string) []Vector {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.hex"))
	if len(files) == 0 {
		t.Fatalf("golden: no vectors in %s", dir)
	}
	sort.Strings(files)
	out := make([]Vector, 0, len(files))
	for _, f := range files {
		out = append(out, Vector{Name: filepath.Base(f), Frame: Read(t, f)})
	}
	return out
}
