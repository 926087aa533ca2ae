// Package ldbtest runs RocksDB's own tools, ldb and sst_dump (Debian's rocksdb-tools), for
// tests that need files RocksDB itself wrote: databases with chosen table options, SSTs
// written for ingestion, checkpoints. Without the tools a test skips, except under
// CI=true, where .ci/run installs them and their absence is a failure. Only tests import
// it.
package ldbtest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Tools are the paths of ldb and sst_dump.
type Tools struct {
	LDB, SSTDump string
}

// Need finds the tools, or skips (under CI, fails) tb.
func Need(tb testing.TB) Tools {
	tb.Helper()
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
		}
		return ""
	}
	tl := Tools{LDB: find("ldb", "rocksdb_ldb"), SSTDump: find("sst_dump", "rocksdb_sst_dump")}
	if tl.LDB == "" || tl.SSTDump == "" {
		msg := "RocksDB's ldb and sst_dump are not installed (apt-get install rocksdb-tools)"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return tl
}

// Run runs bin with args and stdin (nil: none) and returns its standard output; a failure
// fails tb with both outputs.
func (tl Tools) Run(tb testing.TB, stdin []byte, bin string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", filepath.Base(bin), strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// LDBRun runs ldb on db with hex keys and values.
func (tl Tools) LDBRun(tb testing.TB, db string, stdin []byte, args ...string) string {
	tb.Helper()
	return tl.Run(tb, stdin, tl.LDB, append([]string{"--db=" + db, "--hex"}, args...)...)
}

// NewDB creates an empty RocksDB database in a temporary directory and rewrites its OPTIONS
// file with settings (option name -> value, in whichever section holds the option), so
// that later ldb commands with --try_load_options use them.
func (tl Tools) NewDB(tb testing.TB, settings map[string]string) string {
	tb.Helper()
	db := filepath.Join(tb.TempDir(), "db")
	tl.LDBRun(tb, db, nil, "--create_if_missing", "put", "0x00", "0x00")
	tl.LDBRun(tb, db, nil, "delete", "0x00")
	if len(settings) == 0 {
		return db
	}
	names, err := filepath.Glob(filepath.Join(db, "OPTIONS-*"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no OPTIONS file in %s: %v", db, err)
	}
	sort.Strings(names)
	file := names[len(names)-1]
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	text := string(b)
	for k, v := range settings {
		re := regexp.MustCompile(`(?m)^(\s*)` + regexp.QuoteMeta(k) + `=.*$`)
		if !re.MatchString(text) {
			tb.Fatalf("option %s not in %s", k, file)
		}
		text = re.ReplaceAllString(text, "${1}"+k+"="+v)
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return db
}

// KV is one record.
type KV struct{ K, V []byte }

// HexLines is ldb's input of records: "0xKEY ==> 0xVALUE" lines.
func HexLines(kvs []KV) []byte {
	var b bytes.Buffer
	for _, e := range kvs {
		fmt.Fprintf(&b, "0x%X ==> 0x%X\n", e.K, e.V)
	}
	return b.Bytes()
}

// WriteSST has RocksDB write kvs (sorted, unique keys) as an external SST file with db's
// options into out, and returns out.
func (tl Tools) WriteSST(tb testing.TB, db, out string, kvs []KV, args ...string) string {
	tb.Helper()
	args = append(append([]string{"--try_load_options"}, args...), "write_extern_sst", out)
	tl.LDBRun(tb, db, HexLines(kvs), args...)
	return out
}

// Scan is what `ldb scan` prints for db: its live records in key order.
func (tl Tools) Scan(tb testing.TB, db string) []KV {
	tb.Helper()
	out := tl.LDBRun(tb, db, nil, "--try_load_options", "scan")
	var kvs []KV
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " : ")
		if !ok || !strings.HasPrefix(k, "0x") {
			continue
		}
		kb, err1 := hex.DecodeString(strings.TrimPrefix(k, "0x"))
		vb, err2 := hex.DecodeString(strings.TrimPrefix(v, "0x"))
		if err1 != nil || err2 != nil {
			tb.Fatalf("ldb scan line %q", line)
		}
		kvs = append(kvs, KV{kb, vb})
	}
	return kvs
}
