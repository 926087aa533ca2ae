package blockservice

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzCleanPath: a path is refused, or cleaned into one that stays below the root, names no
// reserved file, and cleans to itself.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"", "/", "a/b", "/a//b/", "./a", "a/../b", "..", "a/.x", "a\\b", "a\x00", "a/./b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := cleanPath(p)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("cleanPath(%q): %v is not ErrInvalid", p, err)
			}
			return
		}
		if strings.HasPrefix(c, "/") || strings.HasSuffix(c, "/") || strings.Contains(c, "//") {
			t.Fatalf("cleanPath(%q) = %q", p, c)
		}
		for _, elem := range strings.Split(c, "/") {
			if c != "" && (elem == "" || strings.HasPrefix(elem, ".")) {
				t.Fatalf("cleanPath(%q) = %q has element %q", p, c, elem)
			}
		}
		if again, err := cleanPath(c); err != nil || again != c {
			t.Fatalf("cleanPath(%q) = %q, which cleans to %q, %v", p, c, again, err)
		}
	})
}

// FuzzParseSidecar: a sidecar is refused, or parsed into one that encodes and parses back
// to itself.
func FuzzParseSidecar(f *testing.F) {
	for _, s := range []string{`{"size":9,"md5":"0123456789abcdef0123456789ABCDEF"}`,
		`{"md5":"0123456789abcdef0123456789abcdef","size":0}` + "\n", `{"size":-1}`, `{}`, `[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSidecar(b)
		if err != nil {
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("parseSidecar(%q): %v is not ErrChecksum", b, err)
			}
			return
		}
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseSidecar(enc)
		if err != nil || again != m {
			t.Fatalf("parseSidecar(%q) = %+v, encoded %s, parsed again %+v, %v", b, m, enc, again, err)
		}
	})
}
