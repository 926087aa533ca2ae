package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllReadsTheRepositoryVectors(t *testing.T) {
	vs := All(t, Dir(t))
	if len(vs) < 35 {
		t.Fatalf("%d vectors, want the 35 captured at least", len(vs))
	}
	for _, v := range vs {
		if !strings.HasSuffix(v.Name, ".hex") || len(v.Frame) < 48 || string(v.Frame[:4]) != "THFT" {
			t.Errorf("%s: %d bytes starting %q, want a THFT frame", v.Name, len(v.Frame), v.Frame[:min(4, len(v.Frame))])
		}
	}
	if got := Frame(t, Dir(t), "01"); string(got) != string(vs[0].Frame) {
		t.Error("Frame(01) is not the first vector")
	}
}

func TestDecodeIgnoresWhitespace(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want string
		ok   bool
	}{
		"lines":        {"54 48\n46 54\n", "THFT", true},
		"tabs":         {"\t5448 4654 ", "THFT", true},
		"empty":        {"", "", true},
		"odd":          {"544", "", false},
		"not hex":      {"zz", "", false},
		"quoted":       {`00 00 00 04 "temp" 0a`, "\x00\x00\x00\x04temp\n", true},
		"spaced quote": {`"a b"ff`, "a b\xff", true},
		"unterminated": {`00 "abc`, "", false},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in))
			if (err == nil) != tc.ok || (tc.ok && string(got) != tc.want) {
				t.Fatalf("Decode(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}

func TestFrameWantsOneMatch(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"01-a.hex", "01-b.hex"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		Frame(ft, dir, "01")
	}()
	if !ft.failed {
		t.Fatal("two matches accepted")
	}
}

// fatalRecorder records a Fatal instead of ending the test.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
func (f *fatalRecorder) Helper()               {}
