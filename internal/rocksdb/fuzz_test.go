package rocksdb

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/*.sst with RocksDB's ldb")

// seedTables are the tiny RocksDB-written tables under testdata/ that seed FuzzTable and
// the corruption tests: each a different footer, checksum, compression and index layout.
var seedTables = []struct {
	name     string
	settings map[string]string
	db       bool // a flushed database table with deletions and range deletions, not an external file
}{
	{"v5-xxh3-snappy.sst", nil, false},
	{"v2-crc32c-lz4-partitioned.sst", map[string]string{"format_version": "2", "checksum": "kCRC32c", "compression": "kLZ4Compression", "index_type": "kTwoLevelIndexSearch", "metadata_block_size": "64", "block_size": "256"}, false},
	{"v4-xxhash64-zstd-firstkey.sst", map[string]string{"format_version": "4", "checksum": "kxxHash64", "compression": "kZSTD", "index_type": "kBinarySearchWithFirstKey", "index_block_restart_interval": "4", "block_size": "256"}, false},
	{"v3-nochecksum-zlib-hash.sst", map[string]string{"format_version": "3", "checksum": "kNoChecksum", "compression": "kZlibCompression", "data_block_index_type": "kDataBlockBinaryAndHash", "block_size": "256"}, false},
	{"v5-nochecksum-none-delta.sst", map[string]string{"checksum": "kNoChecksum", "compression": "kNoCompression", "index_block_restart_interval": "8", "block_size": "128"}, false},
	{"v5-xxhash-rangedel.sst", map[string]string{"checksum": "kxxHash", "compression": "kNoCompression"}, true},
	{"v0-legacy-crc32c-lz4.sst", map[string]string{"format_version": "0", "checksum": "kCRC32c", "compression": "kLZ4Compression", "block_size": "256"}, false},
	{"v1-crc32c-bzip2.sst", map[string]string{"format_version": "1", "checksum": "kCRC32c", "compression": "kBZip2Compression", "block_size": "512"}, false},
}

func seedRecords() []kv {
	var kvs []kv
	for i := 0; i < 40; i++ {
		kvs = append(kvs, kv{[]byte(fmt.Sprintf("\x00\x03h%02d%c", i/4, 'a'+i%4)), bytes.Repeat([]byte{'v', byte('0' + i%10)}, i%7)})
	}
	return kvs
}

// TestWriteSeeds rewrites the seed tables with RocksDB when run with -write-seeds.
func TestWriteSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -write-seeds to rewrite testdata/*.sst")
	}
	tl := needTools(t)
	for _, s := range seedTables {
		db := tl.newDB(t, s.settings)
		var path string
		if s.db {
			// Every ldb command flushes its writes into a table of its own when it closes the
			// database, so the range deletion's table holds just the tombstone.
			tl.ldbRun(t, db, hexLines(seedRecords()), "--try_load_options", "load")
			tl.ldbRun(t, db, nil, "--try_load_options", "deleterange", "0x000368303362", "0x000368303561")
			cp := filepath.Join(t.TempDir(), "cp")
			tl.run(t, nil, tl.ldb, "--db="+db, "--try_load_options", "checkpoint", "--checkpoint_dir="+cp)
			names, err := filepath.Glob(filepath.Join(cp, "*.sst"))
			must(t, err)
			for _, n := range names {
				if openFile(t, n, nil).Properties().NumRangeDeletions > 0 {
					path = n
				}
			}
			if path == "" {
				t.Fatal("no table with range deletions in the checkpoint")
			}
		} else {
			path = tl.writeSST(t, db, seedRecords())
		}
		b, err := os.ReadFile(path)
		must(t, err)
		must(t, os.WriteFile(filepath.Join("testdata", s.name), b, 0o644))
	}
}

func readSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	seeds := map[string][]byte{}
	for _, s := range seedTables {
		b, err := os.ReadFile(filepath.Join("testdata", s.name))
		must(tb, err)
		seeds[s.name] = b
	}
	return seeds
}

// readAll opens b as a table and reads it whole, through both iterators. It returns the
// records and an error, which must be a CorruptionError or UnsupportedError naming the
// file: the input is in memory, so nothing else can fail.
func readAll(tb testing.TB, b []byte, opts *Options) ([]sstEntry, []kv, error) {
	tb.Helper()
	const name = "fuzz.sst"
	check := func(err error) error {
		var ce *CorruptionError
		var ue *UnsupportedError
		switch {
		case errors.As(err, &ce):
			if ce.File != name || ce.Offset < 0 || ce.Offset > int64(len(b)) {
				tb.Fatalf("corruption error %v: bad file or offset (file of %d bytes)", err, len(b))
			}
		case errors.As(err, &ue):
			if ue.File != name {
				tb.Fatalf("unsupported error %v: bad file", err)
			}
		default:
			tb.Fatalf("error %v is neither a CorruptionError nor an UnsupportedError", err)
		}
		return err
	}
	t, err := Open(bytes.NewReader(b), int64(len(b)), name, opts)
	if err != nil {
		return nil, nil, check(err)
	}
	var es []sstEntry
	it := t.NewIterator()
	for it.Next() {
		k := it.Key()
		es = append(es, sstEntry{k: bytes.Clone(k.UserKey), v: bytes.Clone(it.Value()), seq: k.SeqNum, kind: k.Kind})
	}
	if err := it.Err(); err != nil {
		return nil, nil, check(err)
	}
	var kvs []kv
	m := NewMergedIterator(t)
	for m.Next() {
		kvs = append(kvs, kv{bytes.Clone(m.Key()), bytes.Clone(m.Value())})
	}
	if err := m.Err(); err != nil {
		return nil, nil, check(err)
	}
	return es, kvs, nil
}

// FuzzTable opens and fully reads arbitrary bytes as a table: an error is fine, a panic,
// a hang or an error that does not name the file and an offset is not.
func FuzzTable(f *testing.F) {
	for _, b := range readSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		readAll(t, b, &Options{MaxBlockSize: 1 << 20})
	})
}

func TestSeedsRead(t *testing.T) {
	for name, b := range readSeeds(t) {
		es, kvs, err := readAll(t, b, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tb, err := Open(bytes.NewReader(b), int64(len(b)), name, nil)
		must(t, err)
		ts, err := tb.RangeTombstones()
		must(t, err)
		if len(ts) > 0 {
			want := RangeTombstone{Start: []byte("\x00\x03h03b"), End: []byte("\x00\x03h05a"), SeqNum: ts[0].SeqNum}
			if len(ts) != 1 || !bytes.Equal(ts[0].Start, want.Start) || !bytes.Equal(ts[0].End, want.End) || ts[0].SeqNum == 0 {
				t.Fatalf("%s: range tombstones %v, want [%q, %q) with a sequence number", name, ts, want.Start, want.End)
			}
			continue
		}
		if len(es) != len(seedRecords()) || len(kvs) != len(es) {
			t.Fatalf("%s: %d entries, %d records, want %d", name, len(es), len(kvs), len(seedRecords()))
		}
	}
}
