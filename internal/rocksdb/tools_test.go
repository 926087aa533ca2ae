package rocksdb

import (
	"bufio"
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

// The tests read files RocksDB itself wrote, with the ldb and sst_dump tools (Debian's
// rocksdb-tools). Without them the tests skip, except under CI=true, where .ci/run installs
// them and their absence is a failure.

type tools struct {
	ldb, sstDump string
}

func needTools(tb testing.TB) tools {
	tb.Helper()
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
		}
		return ""
	}
	tl := tools{ldb: find("ldb", "rocksdb_ldb"), sstDump: find("sst_dump", "rocksdb_sst_dump")}
	if tl.ldb == "" || tl.sstDump == "" {
		msg := "RocksDB's ldb and sst_dump are not installed (apt-get install rocksdb-tools)"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return tl
}

func (tl tools) run(tb testing.TB, stdin []byte, bin string, args ...string) string {
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

// ldbRun runs ldb on db with hex keys and values.
func (tl tools) ldbRun(tb testing.TB, db string, stdin []byte, args ...string) string {
	tb.Helper()
	return tl.run(tb, stdin, tl.ldb, append([]string{"--db=" + db, "--hex"}, args...)...)
}

// newDB creates an empty RocksDB database in a temporary directory and rewrites its OPTIONS
// file with settings (option name -> value, in whichever section holds the option), so
// that later ldb commands with --try_load_options use them.
func (tl tools) newDB(tb testing.TB, settings map[string]string) string {
	tb.Helper()
	db := filepath.Join(tb.TempDir(), "db")
	tl.ldbRun(tb, db, nil, "--create_if_missing", "put", "0x00", "0x00")
	tl.ldbRun(tb, db, nil, "delete", "0x00")
	if len(settings) == 0 {
		return db
	}
	names, err := filepath.Glob(filepath.Join(db, "OPTIONS-*"))
	must(tb, err)
	if len(names) == 0 {
		tb.Fatalf("no OPTIONS file in %s", db)
	}
	sort.Strings(names)
	file := names[len(names)-1]
	b, err := os.ReadFile(file)
	must(tb, err)
	text := string(b)
	for k, v := range settings {
		re := regexp.MustCompile(`(?m)^(\s*)` + regexp.QuoteMeta(k) + `=.*$`)
		if !re.MatchString(text) {
			tb.Fatalf("option %s not in %s", k, file)
		}
		text = re.ReplaceAllString(text, "${1}"+k+"="+v)
	}
	must(tb, os.WriteFile(file, []byte(text), 0o644))
	return db
}

type kv struct{ k, v []byte }

func hexLines(kvs []kv) []byte {
	var b bytes.Buffer
	for _, e := range kvs {
		fmt.Fprintf(&b, "0x%X ==> 0x%X\n", e.k, e.v)
	}
	return b.Bytes()
}

// writeSST has RocksDB write kvs (sorted, unique keys) as an external SST file with db's
// options, and returns its path.
func (tl tools) writeSST(tb testing.TB, db string, kvs []kv, args ...string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "ext.sst")
	args = append(append([]string{"--try_load_options"}, args...), "write_extern_sst", out)
	tl.ldbRun(tb, db, hexLines(kvs), args...)
	return out
}

// scanDB is what `ldb scan` prints for db: its live records in order.
func (tl tools) scanDB(tb testing.TB, db string) []kv {
	tb.Helper()
	return parseHexPairs(tb, tl.ldbRun(tb, db, nil, "--try_load_options", "scan"), " : ")
}

// sstScan is what `sst_dump --command=scan` prints for one file: every entry with its
// sequence number and kind.
type sstEntry struct {
	k, v []byte
	seq  uint64
	kind Kind
}

var sstLine = regexp.MustCompile(`^'([0-9A-F]*)' seq:(\d+), type:(\d+) => ([0-9A-F]*)$`)

func (tl tools) sstScan(tb testing.TB, file string) []sstEntry {
	tb.Helper()
	out := tl.run(tb, nil, tl.sstDump, "--file="+file, "--command=scan", "--output_hex")
	var es []sstEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<26)
	for sc.Scan() {
		m := sstLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var e sstEntry
		e.k, e.v = unhex(tb, m[1]), unhex(tb, m[4])
		fmt.Sscan(m[2], &e.seq)
		var kind int
		fmt.Sscan(m[3], &kind)
		e.kind = Kind(kind)
		es = append(es, e)
	}
	return es
}

func parseHexPairs(tb testing.TB, out, sep string) []kv {
	tb.Helper()
	var kvs []kv
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<26)
	for sc.Scan() {
		line := sc.Text()
		k, v, ok := strings.Cut(line, sep)
		if !ok || !strings.HasPrefix(k, "0x") {
			continue
		}
		kvs = append(kvs, kv{unhex(tb, strings.TrimPrefix(k, "0x")), unhex(tb, strings.TrimPrefix(v, "0x"))})
	}
	must(tb, sc.Err())
	return kvs
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	must(tb, err)
	if b == nil {
		b = []byte{}
	}
	return b
}

func openFile(tb testing.TB, path string, opts *Options) *Table {
	tb.Helper()
	f, err := os.Open(path)
	must(tb, err)
	tb.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	must(tb, err)
	t, err := Open(f, st.Size(), path, opts)
	must(tb, err)
	return t
}

// tableEntries is every entry of one table, through its Iterator, which it also returns
// for what it counted.
func tableEntries(tb testing.TB, t *Table) ([]sstEntry, *Iterator) {
	tb.Helper()
	var es []sstEntry
	it := t.NewIterator()
	for it.Next() {
		k := it.Key()
		es = append(es, sstEntry{k: bytes.Clone(k.UserKey), v: bytes.Clone(it.Value()), seq: k.SeqNum, kind: k.Kind})
	}
	must(tb, it.Err())
	return es, it
}

// merged is every live record of tables, through a MergedIterator.
func merged(tb testing.TB, tables ...*Table) []kv {
	tb.Helper()
	var kvs []kv
	it := NewMergedIterator(tables...)
	for it.Next() {
		kvs = append(kvs, kv{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	must(tb, it.Err())
	return kvs
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
