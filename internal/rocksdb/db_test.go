package rocksdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// smallLevels are options under which a few thousand writes make RocksDB flush often and
// compact into several levels.
var smallLevels = map[string]string{
	"write_buffer_size":                  "65536",
	"arena_block_size":                   "8192",
	"target_file_size_base":              "65536",
	"max_bytes_for_level_base":           "262144",
	"level0_file_num_compaction_trigger": "2",
}

// model is what the database should hold after the operations the test applied.
type model map[string][]byte

func (m model) sorted() []kv {
	kvs := make([]kv, 0, len(m))
	for k, v := range m {
		kvs = append(kvs, kv{[]byte(k), v})
	}
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	return kvs
}

func (m model) deleteRange(start, end []byte) {
	for k := range m {
		if k >= string(start) && k < string(end) {
			delete(m, k)
		}
	}
}

func dbKey(i int) []byte {
	h := fmt.Sprintf("h%05d", i/8)
	k := binary.BigEndian.AppendUint16(nil, uint16(len(h)))
	return append(append(k, h...), fmt.Sprintf("s%d", i%8)...)
}

func dbValue(r *rand.Rand, gen int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("g%d-%d|", gen, r.IntN(1000))), 1+r.IntN(20))
}

// dbOps drives one database through ldb and keeps the model in step.
type dbOps struct {
	tl tools
	db string
	m  model
	r  *rand.Rand
}

func (o *dbOps) load(t *testing.T, keys []int, gen int) {
	t.Helper()
	var kvs []kv
	for _, i := range keys {
		k, v := dbKey(i), dbValue(o.r, gen)
		kvs = append(kvs, kv{k, v})
		o.m[string(k)] = v
	}
	o.tl.ldbRun(t, o.db, hexLines(kvs), "--try_load_options", "load")
}

func (o *dbOps) deleteKeys(t *testing.T, keys []int) {
	t.Helper()
	var b bytes.Buffer
	for _, i := range keys {
		k := dbKey(i)
		fmt.Fprintf(&b, "delete 0x%X\n", k)
		delete(o.m, string(k))
	}
	b.WriteString("quit\n")
	o.tl.ldbRun(t, o.db, b.Bytes(), "--try_load_options", "query")
}

func (o *dbOps) deleteRange(t *testing.T, from, to int) {
	t.Helper()
	s, e := dbKey(from), dbKey(to)
	o.tl.ldbRun(t, o.db, nil, "--try_load_options", "deleterange", fmt.Sprintf("0x%X", s), fmt.Sprintf("0x%X", e))
	o.m.deleteRange(s, e)
}

func (o *dbOps) compact(t *testing.T, from, to int) {
	t.Helper()
	o.tl.ldbRun(t, o.db, nil, "--try_load_options", "compact", fmt.Sprintf("--from=0x%X", dbKey(from)), fmt.Sprintf("--to=0x%X", dbKey(to)))
}

func randomKeys(r *rand.Rand, n, max int) []int {
	keys := make([]int, n)
	for i := range keys {
		keys[i] = r.IntN(max)
	}
	return keys
}

func seqKeys(from, to int) []int {
	var keys []int
	for i := from; i < to; i++ {
		keys = append(keys, i)
	}
	return keys
}

// openDir opens every table of a database directory, newest (highest file number) first.
func openDir(t *testing.T, dir string) []*Table {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	must(t, err)
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	var tables []*Table
	for _, n := range names {
		tables = append(tables, openFile(t, n, nil))
	}
	return tables
}

func sameRecords(t *testing.T, what string, got, want []kv) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		if !bytes.Equal(got[i].k, want[i].k) || !bytes.Equal(got[i].v, want[i].v) {
			t.Fatalf("%s: record %d is %x=%q, want %x=%q", what, i, got[i].k, got[i].v, want[i].k, want[i].v)
		}
	}
}

// TestCheckpointWithHistory builds a RocksDB database with overwrites, point and range
// deletions spread over several levels, takes a checkpoint (as a Pegasus cold backup does),
// and reads the checkpoint's tables merged: exactly the records `ldb scan` shows, and the
// records the operations should have left.
func TestCheckpointWithHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a database of 20,000 records through ldb")
	}
	tl := needTools(t)
	const n = 20000
	o := &dbOps{tl: tl, db: tl.newDB(t, smallLevels), m: model{}, r: rand.New(rand.NewPCG(7, 7))}
	o.load(t, seqKeys(0, n), 1)
	o.load(t, randomKeys(o.r, 4000, n), 2)
	o.deleteKeys(t, randomKeys(o.r, 300, n))
	o.deleteRange(t, 1000, 1500)
	o.deleteRange(t, 7000, 7003)
	o.compact(t, 0, n/2) // push the first half, tombstones applied, to the lower levels
	// Newer writes over the compacted data: tombstones in upper levels over lower levels,
	// a range deletion overlapping an older one, writes into a deleted range after it.
	o.load(t, randomKeys(o.r, 3000, n), 3)
	o.deleteRange(t, 1200, 2600)
	o.deleteRange(t, 15000, 16000)
	o.deleteKeys(t, randomKeys(o.r, 200, n))
	o.load(t, seqKeys(15500, 15600), 4)
	o.load(t, seqKeys(1300, 1310), 4)
	o.deleteRange(t, 15550, 15560)
	o.deleteKeys(t, []int{15501, 15502, 1301})

	cp := filepath.Join(t.TempDir(), "checkpoint")
	tl.run(t, nil, tl.ldb, "--db="+o.db, "--try_load_options", "checkpoint", "--checkpoint_dir="+cp)

	want := o.m.sorted()
	sameRecords(t, "ldb scan of the checkpoint", tl.scanDB(t, cp), want)

	tables := openDir(t, cp)
	var withRangeDels, withDeletes, zeroSeq int
	levels := countLevels(tl.run(t, nil, tl.ldb, "--db="+cp, "list_live_files_metadata"))
	for _, tb := range tables {
		p := tb.Properties()
		if p.NumRangeDeletions > 0 {
			withRangeDels++
		}
		if p.NumDeletions > 0 {
			withDeletes++
		}
		es, _ := tableEntries(t, tb)
		if len(es) > 0 && es[0].seq == 0 {
			zeroSeq++
		}
	}
	t.Logf("%d tables on %d levels; %d with range deletions, %d with deletions, %d with zeroed sequence numbers", len(tables), levels, withRangeDels, withDeletes, zeroSeq)
	// How RocksDB's background compactions spread the files varies from run to run; these
	// hold in every arrangement of this history.
	if levels < 2 || withRangeDels == 0 || withDeletes == 0 || zeroSeq == 0 {
		t.Fatalf("the database does not exercise what it should: %d levels, %d tables with range deletions, %d with deletions, %d with zeroed sequence numbers", levels, withRangeDels, withDeletes, zeroSeq)
	}
	sameRecords(t, "merged tables of the checkpoint", merged(t, tables...), want)
	slices.Reverse(tables)
	sameRecords(t, "merged tables, oldest first", merged(t, tables...), want)
}

// countLevels counts the levels with files in `ldb list_live_files_metadata` output.
func countLevels(out string) int {
	levels, cur := map[string]bool{}, ""
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "---- level") {
			cur = line
		} else if strings.HasSuffix(strings.TrimSpace(line), ".sst") && cur != "" {
			levels[cur] = true
		}
	}
	return len(levels)
}

// TestMergedIngestedFiles merges two files written for ingestion, both with sequence
// number 0 in their keys: the one listed first wins, unless Options.GlobalSeqNum says
// otherwise, as the MANIFEST of a database that ingested them would.
func TestMergedIngestedFiles(t *testing.T) {
	tl := needTools(t)
	db := tl.newDB(t, nil)
	older := []kv{{[]byte("a"), []byte("old-a")}, {[]byte("b"), []byte("old-b")}, {[]byte("d"), []byte("old-d")}}
	newer := []kv{{[]byte("b"), []byte("new-b")}, {[]byte("c"), []byte("new-c")}}
	po, pn := tl.writeSST(t, db, older), tl.writeSST(t, db, newer)
	sameRecords(t, "newer first", merged(t, openFile(t, pn, nil), openFile(t, po, nil)),
		[]kv{{[]byte("a"), []byte("old-a")}, {[]byte("b"), []byte("new-b")}, {[]byte("c"), []byte("new-c")}, {[]byte("d"), []byte("old-d")}})
	sameRecords(t, "by global seqno", merged(t, openFile(t, po, &Options{GlobalSeqNum: 5}), openFile(t, pn, &Options{GlobalSeqNum: 9})),
		[]kv{{[]byte("a"), []byte("old-a")}, {[]byte("b"), []byte("new-b")}, {[]byte("c"), []byte("new-c")}, {[]byte("d"), []byte("old-d")}})
	es, _ := tableEntries(t, openFile(t, pn, &Options{GlobalSeqNum: 9}))
	if es[0].seq != 9 {
		t.Fatalf("entry seq %d with GlobalSeqNum 9", es[0].seq)
	}
}

// TestMergedRejectsMergeOperands reads a table of merge operands (db_bench's mergerandom):
// the table iterator shows them, the merged iterator refuses them with an UnsupportedError
// naming the file.
func TestMergedRejectsMergeOperands(t *testing.T) {
	tl := needTools(t)
	bench := strings.Replace(tl.ldb, "ldb", "db_bench", 1)
	if _, err := os.Stat(bench); err != nil {
		t.Skipf("no db_bench beside %s", tl.ldb)
	}
	db := filepath.Join(t.TempDir(), "db")
	tl.run(t, nil, bench, "--db="+db, "--benchmarks=mergerandom,flush", "--num=50", "--merge_operator=uint64add",
		"--compression_type=none", "--use_existing_db=0", "--disable_wal=1")
	tables := openDir(t, db)
	if len(tables) != 1 {
		t.Fatalf("%d tables, want 1", len(tables))
	}
	es, _ := tableEntries(t, tables[0])
	if len(es) == 0 || es[0].kind != KindMerge {
		t.Fatalf("first entry %+v, want a merge operand", es)
	}
	it := NewMergedIterator(tables...)
	for it.Next() {
	}
	var ue *UnsupportedError
	if !errors.As(it.Err(), &ue) || !errors.Is(it.Err(), ErrUnsupported) || ue.File != tables[0].Name() {
		t.Fatalf("merged iteration: %v, want an UnsupportedError naming %s", it.Err(), tables[0].Name())
	}
}

// TestColumnFamilies reads a checkpoint of a database with a second column family, as
// Pegasus keeps its metadata in pegasus_meta_cf: each table names its column family, and
// tables of different families are not merged.
func TestColumnFamilies(t *testing.T) {
	tl := needTools(t)
	db := tl.newDB(t, nil)
	tl.ldbRun(t, db, nil, "--try_load_options", "put", "0x000161", "0x76")
	tl.run(t, nil, tl.ldb, "--db="+db, "create_column_family", "pegasus_meta_cf")
	tl.ldbRun(t, db, nil, "--column_family=pegasus_meta_cf", "put", "0x70", "0x01")
	cp := filepath.Join(t.TempDir(), "cp")
	tl.run(t, nil, tl.ldb, "--db="+db, "checkpoint", "--checkpoint_dir="+cp)
	byCF := map[string][]*Table{}
	for _, tb := range openDir(t, cp) {
		p := tb.Properties()
		byCF[p.ColumnFamilyName] = append(byCF[p.ColumnFamilyName], tb)
		if want := map[string]uint64{"default": 0, "pegasus_meta_cf": 1}[p.ColumnFamilyName]; p.ColumnFamilyID != want {
			t.Fatalf("%s: column family %q has ID %d, want %d", tb.Name(), p.ColumnFamilyName, p.ColumnFamilyID, want)
		}
	}
	if len(byCF["default"]) == 0 || len(byCF["pegasus_meta_cf"]) != 1 {
		t.Fatalf("tables by column family: %v", byCF)
	}
	sameRecords(t, "pegasus_meta_cf", merged(t, byCF["pegasus_meta_cf"]...), []kv{{[]byte("p"), []byte{1}}})
	it := NewMergedIterator(append(byCF["default"], byCF["pegasus_meta_cf"]...)...)
	if it.Next() || it.Err() == nil {
		t.Fatal("tables of two column families merged")
	}
}
