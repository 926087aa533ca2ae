package rocksdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// pegasusRecords makes n records with Pegasus-encoded keys (u16 hash key length, hash key,
// sort key): several sort keys per hash key, empty sort keys and values among them, values
// of up to a few hundred bytes, some compressible, some random. Sorted, keys unique.
func pegasusRecords(seed uint64, n int) []kv {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := make(map[string]bool, n)
	kvs := make([]kv, 0, n)
	for len(kvs) < n {
		hash := fmt.Sprintf("user%06d", r.IntN(n/4+1))
		sort := make([]byte, r.IntN(24))
		for i := range sort {
			sort[i] = byte(r.IntN(256))
		}
		k := binary.BigEndian.AppendUint16(nil, uint16(len(hash)))
		k = append(append(k, hash...), sort...)
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		var v []byte
		switch r.IntN(4) {
		case 0: // empty
		case 1: // random bytes
			v = make([]byte, r.IntN(300))
			for i := range v {
				v[i] = byte(r.IntN(256))
			}
		default: // compressible text
			v = bytes.Repeat([]byte(fmt.Sprintf("value-%d-", r.IntN(1000))), r.IntN(30))
		}
		kvs = append(kvs, kv{k, v})
	}
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	return kvs
}

// checkExternal checks a table RocksDB wrote from kvs: every entry, in order, as the input
// and as sst_dump shows it, and the merged view equal to the input.
func checkExternal(t *testing.T, tl tools, path string, kvs []kv) (*Table, *Iterator) {
	t.Helper()
	tb := openFile(t, path, nil)
	got, it := tableEntries(t, tb)
	want := tl.sstScan(t, path)
	if len(want) != len(kvs) {
		t.Fatalf("sst_dump shows %d entries, %d were written", len(want), len(kvs))
	}
	if len(got) != len(want) {
		t.Fatalf("read %d entries, sst_dump shows %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !bytes.Equal(g.k, w.k) || !bytes.Equal(g.v, w.v) || g.seq != w.seq || g.kind != w.kind {
			t.Fatalf("entry %d: read %x=%x seq %d %s, sst_dump %x=%x seq %d %s", i, g.k, g.v, g.seq, g.kind, w.k, w.v, w.seq, w.kind)
		}
		if !bytes.Equal(g.k, kvs[i].k) || !bytes.Equal(g.v, kvs[i].v) || g.kind != KindPut {
			t.Fatalf("entry %d: read %x=%x %s, wrote %x=%x", i, g.k, g.v, g.kind, kvs[i].k, kvs[i].v)
		}
	}
	m := merged(t, tb)
	if len(m) != len(kvs) {
		t.Fatalf("merged view has %d records, %d were written", len(m), len(kvs))
	}
	for i := range m {
		if !bytes.Equal(m[i].k, kvs[i].k) || !bytes.Equal(m[i].v, kvs[i].v) {
			t.Fatalf("merged record %d: %x=%x, wrote %x=%x", i, m[i].k, m[i].v, kvs[i].k, kvs[i].v)
		}
	}
	p := tb.Properties()
	if p.NumEntries != uint64(len(kvs)) || p.ColumnFamilyName != "default" || p.Comparator != "leveldb.BytewiseComparator" {
		t.Fatalf("properties: entries %d (want %d), column family %q, comparator %q", p.NumEntries, len(kvs), p.ColumnFamilyName, p.Comparator)
	}
	return tb, it
}

// compressedWith checks that the iteration read data blocks compressed with c.
func compressedWith(t *testing.T, it *Iterator, c compressionType) {
	t.Helper()
	if it.dataBuf.blocks[c] == 0 {
		t.Fatalf("no data block compressed with %s (blocks by type: %v)", c, nonZero(it.dataBuf.blocks[:]))
	}
}

func nonZero(counts []int) map[int]int {
	m := map[int]int{}
	for i, n := range counts {
		if n > 0 {
			m[i] = n
		}
	}
	return m
}

func TestExternalFormatsAndCompressions(t *testing.T) {
	tl := needTools(t)
	kvs := pegasusRecords(1, 3000)
	type codec struct {
		opt  string
		want compressionType
	}
	common := []codec{
		{"kNoCompression", compressionNone},
		{"kSnappyCompression", compressionSnappy},
		{"kLZ4Compression", compressionLZ4},
		{"kZSTD", compressionZSTD},
	}
	// Before format_version 2, lz4 stores the decompressed size in 8 bytes and zlib and
	// bzip2 store none.
	old := append(common, codec{"kZlibCompression", compressionZlib}, codec{"kBZip2Compression", compressionBZip2})
	for _, fv := range []string{"0", "1", "2", "3", "4", "5"} {
		codecs := common
		settings := map[string]string{"format_version": fv}
		if fv < "2" {
			codecs = old
			settings["checksum"] = "kCRC32c" // the legacy footer has no checksum type
		}
		for _, c := range codecs {
			t.Run("v"+fv+"/"+c.opt, func(t *testing.T) {
				settings["compression"] = c.opt
				db := tl.newDB(t, settings)
				tb, it := checkExternal(t, tl, tl.writeSST(t, db, kvs), kvs)
				compressedWith(t, it, c.want)
				if got := fmt.Sprint(tb.FormatVersion()); got != fv {
					t.Fatalf("format_version %s, want %s", got, fv)
				}
				p := tb.Properties()
				if wantUser, wantDelta := fv >= "3", fv >= "4"; p.IndexKeyIsUserKey != wantUser || p.IndexValueIsDeltaEncoded != wantDelta {
					t.Fatalf("index key is user key %v (want %v), delta values %v (want %v)", p.IndexKeyIsUserKey, wantUser, p.IndexValueIsDeltaEncoded, wantDelta)
				}
			})
		}
	}
}

func TestExternalChecksums(t *testing.T) {
	tl := needTools(t)
	kvs := pegasusRecords(2, 2000)
	for _, c := range []struct {
		opt  string
		want checksumType
	}{
		{"kNoChecksum", checksumNone},
		{"kCRC32c", checksumCRC32C},
		{"kxxHash", checksumXXHash},
		{"kxxHash64", checksumXXHash64},
		{"kXXH3", checksumXXH3},
	} {
		for _, fv := range []string{"2", "5"} {
			t.Run(c.opt+"/v"+fv, func(t *testing.T) {
				db := tl.newDB(t, map[string]string{"checksum": c.opt, "format_version": fv})
				tb, _ := checkExternal(t, tl, tl.writeSST(t, db, kvs), kvs)
				if tb.footer.checksum != c.want {
					t.Fatalf("footer checksum %s, want %s", tb.footer.checksum, c.want)
				}
			})
		}
	}
}

// TestChecksumsEveryBlockSize has RocksDB write one block per record, with records of
// every size from 1 to 400 bytes, so each checksum is checked against RocksDB's on every
// length class of its hash (XXH3 has five) and both sides of each boundary.
func TestChecksumsEveryBlockSize(t *testing.T) {
	tl := needTools(t)
	var kvs []kv
	for i := 0; i < 400; i++ {
		kvs = append(kvs, kv{[]byte(fmt.Sprintf("%04d", i)), bytes.Repeat([]byte{byte(i)}, i)})
	}
	for _, c := range []string{"kCRC32c", "kxxHash", "kxxHash64", "kXXH3"} {
		t.Run(c, func(t *testing.T) {
			db := tl.newDB(t, map[string]string{"checksum": c, "block_size": "1", "compression": "kNoCompression"})
			tb, _ := checkExternal(t, tl, tl.writeSST(t, db, kvs), kvs)
			if n := tb.Properties().NumDataBlocks; n != uint64(len(kvs)) {
				t.Fatalf("%d data blocks, want one per record (%d)", n, len(kvs))
			}
		})
	}
}

func TestExternalIndexAndBlockOptions(t *testing.T) {
	tl := needTools(t)
	kvs := pegasusRecords(3, 5000)
	for _, c := range []struct {
		name     string
		settings map[string]string
		check    func(t *testing.T, p *Properties, it *Iterator)
	}{
		{"partitioned-v5", map[string]string{"index_type": "kTwoLevelIndexSearch", "metadata_block_size": "256"}, func(t *testing.T, p *Properties, it *Iterator) {
			if p.IndexType != indexTwoLevel || p.IndexPartitions < 2 {
				t.Fatalf("index type %d with %d partitions, want a two-level index with several", p.IndexType, p.IndexPartitions)
			}
		}},
		{"partitioned-v2", map[string]string{"index_type": "kTwoLevelIndexSearch", "metadata_block_size": "256", "format_version": "2"}, nil},
		{"partitioned-v4-restart16", map[string]string{"index_type": "kTwoLevelIndexSearch", "metadata_block_size": "512", "format_version": "4", "index_block_restart_interval": "16"}, deltaValues},
		{"delta-index-restart16", map[string]string{"index_block_restart_interval": "16"}, deltaValues},
		{"first-key-index", map[string]string{"index_type": "kBinarySearchWithFirstKey"}, func(t *testing.T, p *Properties, it *Iterator) {
			if p.IndexType != indexBinarySearchWithFirst {
				t.Fatalf("index type %d, want %d", p.IndexType, indexBinarySearchWithFirst)
			}
		}},
		{"first-key-index-restart4", map[string]string{"index_type": "kBinarySearchWithFirstKey", "index_block_restart_interval": "4"}, deltaValues},
		{"hash-index", map[string]string{"index_type": "kHashSearch", "prefix_extractor": "rocksdb.CappedPrefix.6"}, func(t *testing.T, p *Properties, it *Iterator) {
			if p.IndexType != indexHashSearch || p.PrefixExtractor != "rocksdb.CappedPrefix.6" {
				t.Fatalf("index type %d, prefix extractor %q", p.IndexType, p.PrefixExtractor)
			}
		}},
		{"data-block-hash-index", map[string]string{"data_block_index_type": "kDataBlockBinaryAndHash"}, func(t *testing.T, p *Properties, it *Iterator) {
			if it.hashed == 0 {
				t.Fatal("no data block with a hash index")
			}
		}},
		{"restart-interval-1", map[string]string{"block_restart_interval": "1"}, nil},
		{"big-blocks", map[string]string{"block_size": "65536"}, nil},
		{"bloom-filter", map[string]string{"filter_policy": "bloomfilter:10:false"}, func(t *testing.T, p *Properties, it *Iterator) {
			if p.FilterSize == 0 {
				t.Fatal("no filter block written")
			}
		}},
		{"partitioned-filter", map[string]string{"filter_policy": "bloomfilter:10:false", "partition_filters": "true", "index_type": "kTwoLevelIndexSearch"}, nil},
		{"uncompressed-index", map[string]string{"enable_index_compression": "false", "compression": "kZSTD"}, nil},
		{"zlib", map[string]string{"compression": "kZlibCompression"}, compressed(compressionZlib)},
		{"zlib-v2", map[string]string{"compression": "kZlibCompression", "format_version": "2"}, compressed(compressionZlib)},
		{"bzip2", map[string]string{"compression": "kBZip2Compression"}, compressed(compressionBZip2)},
		{"lz4hc", map[string]string{"compression": "kLZ4HCCompression"}, compressed(compressionLZ4HC)},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := tl.newDB(t, c.settings)
			tb, it := checkExternal(t, tl, tl.writeSST(t, db, kvs), kvs)
			if c.check != nil {
				c.check(t, tb.Properties(), it)
			}
		})
	}
}

func deltaValues(t *testing.T, p *Properties, it *Iterator) {
	if !p.IndexValueIsDeltaEncoded || it.top.deltas+it.part.deltas == 0 {
		t.Fatalf("no delta-encoded index value read (property %v)", p.IndexValueIsDeltaEncoded)
	}
}

func compressed(c compressionType) func(t *testing.T, p *Properties, it *Iterator) {
	return func(t *testing.T, p *Properties, it *Iterator) { compressedWith(t, it, c) }
}

// TestExternalCompressionDictionary reads tables whose blocks were compressed with a
// dictionary (compression_opts max_dict_bytes), raw and zstd-trained.
func TestExternalCompressionDictionary(t *testing.T) {
	tl := needTools(t)
	kvs := pegasusRecords(4, 5000)
	for _, c := range []struct {
		name, compression, opts string
		want                    compressionType
	}{
		{"zstd-raw", "kZSTD", "{max_dict_bytes=16384;}", compressionZSTD},
		{"zstd-trained", "kZSTD", "{max_dict_bytes=16384;zstd_max_train_bytes=65536;}", compressionZSTD},
		{"lz4", "kLZ4Compression", "{max_dict_bytes=16384;}", compressionLZ4},
		{"zlib", "kZlibCompression", "{max_dict_bytes=16384;}", compressionZlib},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := tl.newDB(t, map[string]string{"compression": c.compression, "compression_opts": c.opts})
			tb, it := checkExternal(t, tl, tl.writeSST(t, db, kvs), kvs)
			compressedWith(t, it, c.want)
			if len(tb.dict) == 0 {
				t.Fatal("table has no compression dictionary")
			}
		})
	}
}

func TestOpenRejectsNonTables(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"short", []byte("not a table"), ErrCorrupt},
		{"zeros", make([]byte, 4096), ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(c.data), int64(len(c.data)), "x.sst", nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File != "x.sst" {
				t.Fatalf("Open: %v, want a CorruptionError naming x.sst", err)
			}
		})
	}
}
