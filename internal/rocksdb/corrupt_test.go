package rocksdb

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestEveryByteFlipped flips each byte of every seed table in turn. Where blocks carry
// checksums, reading must then fail or return exactly what the intact file holds (a flip in
// padding or in a filter block changes nothing read); without checksums it may return
// anything but must fail cleanly (readAll checks the error's type, file and offset).
func TestEveryByteFlipped(t *testing.T) {
	for name, orig := range readSeeds(t) {
		t.Run(name, func(t *testing.T) {
			wantEs, wantKVs, err := readAll(t, orig, nil)
			must(t, err)
			checked := !strings.Contains(name, "nochecksum")
			b := bytes.Clone(orig)
			failed := 0
			for i := range b {
				for _, x := range []byte{0x01, 0x80, 0xff} {
					b[i] ^= x
					es, kvs, err := readAll(t, b, &Options{MaxBlockSize: 1 << 20})
					b[i] ^= x
					if err != nil {
						failed++
						continue
					}
					if checked && (!reflect.DeepEqual(es, wantEs) || !reflect.DeepEqual(kvs, wantKVs)) {
						t.Fatalf("byte %d ^ %#x: read succeeded with different contents", i, x)
					}
				}
			}
			if failed == 0 {
				t.Fatal("no flip was detected")
			}
		})
	}
}

// TestTruncated cuts every seed table at every length: Open or the read must fail with a
// CorruptionError.
func TestTruncated(t *testing.T) {
	for name, b := range readSeeds(t) {
		for n := 0; n < len(b); n++ {
			if _, _, err := readAll(t, b[:n], nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s cut to %d bytes: %v, want a corruption error", name, n, err)
			}
		}
	}
}

// dataHandles lists a table's data blocks through its (single-level) index.
func dataHandles(t *testing.T, tb *Table) []handle {
	t.Helper()
	it := tb.NewIterator()
	if !it.openIndex(tb.index, &it.top, &it.topBuf, "index", 0) {
		t.Fatal(it.Err())
	}
	var hs []handle
	for {
		ok, err := it.top.next()
		must(t, err)
		if !ok {
			return hs
		}
		hs = append(hs, it.top.h)
	}
}

// TestDamagedDataBlock damages a table RocksDB wrote, in one data block's contents, in its
// stored checksum, and in the footer's checksum type, and checks that reading fails with a
// CorruptionError naming the file and the damaged block's offset.
func TestDamagedDataBlock(t *testing.T) {
	tl := needTools(t)
	kvs := pegasusRecords(5, 3000)
	for _, cs := range []string{"kCRC32c", "kXXH3"} {
		t.Run(cs, func(t *testing.T) {
			path := tl.writeSST(t, tl.newDB(t, map[string]string{"checksum": cs}), kvs)
			orig, err := os.ReadFile(path)
			must(t, err)
			hs := dataHandles(t, openFile(t, path, nil))
			if len(hs) < 10 {
				t.Fatalf("only %d data blocks", len(hs))
			}
			h := hs[len(hs)/2]
			for _, c := range []struct {
				what string
				at   uint64
			}{
				{"contents", h.offset + h.size/2},
				{"checksum", h.offset + h.size + 2},
				{"compression type", h.offset + h.size},
			} {
				t.Run(c.what, func(t *testing.T) {
					b := bytes.Clone(orig)
					b[c.at] ^= 0x10
					_, _, err := readAll(t, b, nil)
					var ce *CorruptionError
					if !errors.As(err, &ce) || ce.Offset != int64(h.offset) {
						t.Fatalf("%s of the block at %d damaged: %v, want a corruption error at its offset", c.what, h.offset, err)
					}
				})
			}
			// The footer's checksum type: another hash over the same blocks.
			b := bytes.Clone(orig)
			b[len(b)-footerLen] = byte(checksumXXHash64)
			if _, _, err := readAll(t, b, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("footer checksum type changed: %v, want a corruption error", err)
			}
		})
	}
}
