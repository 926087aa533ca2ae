package rocksdb

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/rocksdb/ldbtest"
)

// The tests read files RocksDB itself wrote, with the ldb and sst_dump tools (Debian's
// rocksdb-tools). Without them the tests skip, except under CI=true, where .ci/run installs
// them and their absence is a failure.

type tools struct {
	ldbtest.Tools
	ldb, sstDump string
}

func needTools(tb testing.TB) tools {
	tb.Helper()
	tl := ldbtest.Need(tb)
	return tools{Tools: tl, ldb: tl.LDB, sstDump: tl.SSTDump}
}

func (tl tools) run(tb testing.TB, stdin []byte, bin string, args ...string) string {
	tb.Helper()
	return tl.Run(tb, stdin, bin, args...)
}

// ldbRun runs ldb on db with hex keys and values.
func (tl tools) ldbRun(tb testing.TB, db string, stdin []byte, args ...string) string {
	tb.Helper()
	return tl.LDBRun(tb, db, stdin, args...)
}

// newDB: see ldbtest.Tools.NewDB.
func (tl tools) newDB(tb testing.TB, settings map[string]string) string {
	tb.Helper()
	return tl.NewDB(tb, settings)
}

type kv struct{ k, v []byte }

func hexLines(kvs []kv) []byte {
	out := make([]ldbtest.KV, len(kvs))
	for i, e := range kvs {
		out[i] = ldbtest.KV{K: e.k, V: e.v}
	}
	return ldbtest.HexLines(out)
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
