package rocksdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"
)

// toFormatV6 rewrites a format_version 5 table RocksDB wrote (binary search index, no
// filter) into the format_version 6 layout as RocksDB's format.cc describes it: every block
// checksum offset by the context of a base value and the block's offset, the index handle
// moved from the footer into the metaindex, and the footer with its own checksum and the
// metaindex size. RocksDB 7.8 cannot write format_version 6, so this is how the reading of
// that layout is exercised here.
func toFormatV6(t *testing.T, orig []byte, base uint32) []byte {
	t.Helper()
	tb, err := Open(bytes.NewReader(orig), int64(len(orig)), "v5.sst", nil)
	must(t, err)
	if tb.FormatVersion() != 5 || tb.props.IndexType != indexBinarySearch || tb.props.FilterSize != 0 {
		t.Fatalf("want a format_version 5 table with a binary search index and no filter")
	}
	b := bytes.Clone(orig[:tb.footer.metaindex.offset])
	addContext := func(h handle) {
		at := h.offset + h.size + 1
		sum := binary.LittleEndian.Uint32(b[at:]) + contextModifier(base, h.offset)
		binary.LittleEndian.PutUint32(b[at:], sum)
	}
	for _, h := range dataHandles(t, tb) {
		addContext(h)
	}
	addContext(tb.index)
	// The metaindex entries, plus the index handle, in name order.
	var it blockIter
	var raw blockBuf
	mi, err := tb.readBlock(tb.footer.metaindex, "metaindex", &raw, 0)
	must(t, err)
	must(t, it.init(tb, 0, "metaindex", mi, false))
	type entry struct{ k, v []byte }
	var es []entry
	must(t, it.each(func(key, val []byte) error {
		h, _, _ := decodeHandle(val)
		addContext(h)
		es = append(es, entry{bytes.Clone(key), bytes.Clone(val)})
		return nil
	}))
	ih := binary.AppendUvarint(binary.AppendUvarint(nil, tb.index.offset), tb.index.size)
	es = append(es, entry{[]byte(metaIndex), ih})
	slices.SortFunc(es, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	metaOff := uint64(len(b))
	var block, restarts []byte
	for _, e := range es {
		restarts = binary.LittleEndian.AppendUint32(restarts, uint32(len(block)))
		block = binary.AppendUvarint(block, 0)
		block = binary.AppendUvarint(block, uint64(len(e.k)))
		block = binary.AppendUvarint(block, uint64(len(e.v)))
		block = append(append(block, e.k...), e.v...)
	}
	block = binary.LittleEndian.AppendUint32(append(block, restarts...), uint32(len(es)))
	b = append(append(b, block...), byte(compressionNone))
	b = binary.LittleEndian.AppendUint32(b, blockChecksum(tb.footer.checksum, b[metaOff:])+contextModifier(base, metaOff))
	// The footer.
	footerOff := uint64(len(b))
	f := make([]byte, footerLen)
	f[0] = byte(tb.footer.checksum)
	copy(f[1:], extendedMagic)
	binary.LittleEndian.PutUint32(f[9:], base)
	binary.LittleEndian.PutUint32(f[13:], uint32(len(block)))
	binary.LittleEndian.PutUint32(f[41:], 6)
	binary.LittleEndian.PutUint64(f[45:], magicBlockBased)
	binary.LittleEndian.PutUint32(f[5:], blockChecksum(tb.footer.checksum, f)+contextModifier(base, footerOff))
	return append(b, f...)
}

func TestFormatVersion6Layout(t *testing.T) {
	tl := needTools(t)
	kvs := pegasusRecords(6, 3000)
	for _, cs := range []string{"kCRC32c", "kXXH3"} {
		t.Run(cs, func(t *testing.T) {
			path := tl.writeSST(t, tl.newDB(t, map[string]string{"checksum": cs}), kvs)
			orig, err := os.ReadFile(path)
			must(t, err)
			wantEs, wantKVs, err := readAll(t, orig, nil)
			must(t, err)
			v6 := toFormatV6(t, orig, 0x5eed1234)
			es, got, err := readAll(t, v6, nil)
			must(t, err)
			if !reflect.DeepEqual(es, wantEs) || !reflect.DeepEqual(got, wantKVs) {
				t.Fatal("the format_version 6 table reads differently")
			}
			tb, err := Open(bytes.NewReader(v6), int64(len(v6)), "v6.sst", nil)
			must(t, err)
			if tb.FormatVersion() != 6 || tb.footer.contextBase != 0x5eed1234 {
				t.Fatalf("format_version %d, context base %#x", tb.FormatVersion(), tb.footer.contextBase)
			}
			// Another base in the footer: its own checksum fails; recomputed, the blocks'
			// checksums, whose context is the old base, fail.
			other := bytes.Clone(v6)
			f := other[len(other)-footerLen:]
			binary.LittleEndian.PutUint32(f[9:], 0x5eed1235)
			if _, _, err := readAll(t, other, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("footer with another context base: %v, want a corruption error", err)
			}
			binary.LittleEndian.PutUint32(f[5:], 0)
			binary.LittleEndian.PutUint32(f[5:], blockChecksum(tb.footer.checksum, f)+contextModifier(0x5eed1235, uint64(tb.footer.offset)))
			var ce *CorruptionError
			if _, _, err := readAll(t, other, nil); !errors.As(err, &ce) || ce.Offset != int64(tb.footer.metaindex.offset) {
				t.Fatalf("blocks checked with another context base: %v, want a corruption error at the metaindex", err)
			}
		})
	}
}
