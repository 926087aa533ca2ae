package rocksdb

import (
	"bytes"
	"encoding/binary"
)

const (
	// magicBlockBased ends every block-based table with format_version >= 1.
	magicBlockBased = 0x88e241b785f4cff7
	// magicLegacyBlockBased ends a format_version 0 table (LevelDB's footer layout).
	magicLegacyBlockBased = 0xdb4775248b80fb57
	// magicPlain and magicLegacyPlain end RocksDB's plain tables, which this package does not
	// read; they are recognised for a clear error.
	magicPlain       = 0x8242229663bf9564
	magicLegacyPlain = 0x4f3418eb7a8f13b8
	magicCuckoo      = 0x926789d0c5f17873

	maxVarint64Len = 10
	// footerLegacyLen is the format_version 0 footer: two handles padded to 40 bytes, magic.
	footerLegacyLen = 2*2*maxVarint64Len + 8
	// footerLen is every later footer: checksum type, 40 bytes of handles (or, from
	// format_version 6, the extended fields), format_version, magic.
	footerLen = 1 + 2*2*maxVarint64Len + 4 + 8

	// trailerLen is the compression type byte and the checksum after every block.
	trailerLen = 5

	maxFormatVersion = 6
)

// extendedMagic opens part 2 of a format_version 6 footer.
var extendedMagic = []byte{0x3e, 0x00, 0x7a, 0x00}

// handle locates a block: its offset and its size without the trailer.
type handle struct {
	offset, size uint64
}

// decodeHandle reads a handle's two varints from the front of b.
func decodeHandle(b []byte) (handle, int, bool) {
	off, n := binary.Uvarint(b)
	if n <= 0 {
		return handle{}, 0, false
	}
	size, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return handle{}, 0, false
	}
	return handle{offset: off, size: size}, n + m, true
}

// footer is what the end of the file says.
type footer struct {
	formatVersion uint32
	checksum      checksumType
	metaindex     handle
	index         handle // zero for format_version 6, where the metaindex holds it
	contextBase   uint32 // format_version 6: base of the per-block checksum modifier
	offset        int64  // where the footer starts
}

// readFooter reads and checks the footer at the end of the file.
func (t *Table) readFooter() error {
	if t.size < footerLegacyLen {
		return t.corrupt(0, "file of %d bytes is too short for a footer", t.size)
	}
	n := int64(footerLen)
	if t.size < n {
		n = footerLegacyLen
	}
	buf := make([]byte, n)
	if err := t.readAt(buf, t.size-n); err != nil {
		return err
	}
	magic := binary.LittleEndian.Uint64(buf[n-8:])
	f := &t.footer
	switch magic {
	case magicLegacyBlockBased:
		f.offset = t.size - footerLegacyLen
		f.checksum = checksumCRC32C
		part := buf[n-footerLegacyLen:]
		if err := t.decodeFooterHandles(part, f.offset); err != nil {
			return err
		}
		return nil
	case magicBlockBased:
	case magicPlain, magicLegacyPlain:
		return t.unsupported(t.size-8, "plain table (only block-based tables are read)")
	case magicCuckoo:
		return t.unsupported(t.size-8, "cuckoo table (only block-based tables are read)")
	default:
		return t.corrupt(t.size-8, "bad magic number %#016x: not a RocksDB block-based table", magic)
	}
	if t.size < footerLen {
		return t.corrupt(0, "file of %d bytes is too short for a footer", t.size)
	}
	f.offset = t.size - footerLen
	f.formatVersion = binary.LittleEndian.Uint32(buf[footerLen-12:])
	if f.formatVersion < 1 || f.formatVersion > maxFormatVersion {
		if f.formatVersion > maxFormatVersion {
			return t.unsupported(f.offset, "format_version %d (up to %d is read)", f.formatVersion, maxFormatVersion)
		}
		return t.corrupt(f.offset, "format_version %d with a format_version >= 1 magic number", f.formatVersion)
	}
	f.checksum = checksumType(buf[0])
	if f.checksum > checksumXXH3 {
		return t.corrupt(f.offset, "unknown checksum type %d", buf[0])
	}
	if f.formatVersion < 6 {
		return t.decodeFooterHandles(buf[1:], f.offset+1)
	}
	return t.decodeFooterV6(buf)
}

func (t *Table) decodeFooterHandles(b []byte, off int64) error {
	mi, n, ok := decodeHandle(b)
	if !ok {
		return t.corrupt(off, "bad metaindex handle in footer")
	}
	ix, _, ok := decodeHandle(b[n:])
	if !ok {
		return t.corrupt(off, "bad index handle in footer")
	}
	t.footer.metaindex, t.footer.index = mi, ix
	return nil
}

// decodeFooterV6 reads the format_version 6 footer: the extended magic, a checksum of the
// footer itself, the base of the per-block checksum context and the size of the metaindex
// block, which ends right before the footer.
func (t *Table) decodeFooterV6(buf []byte) error {
	f := &t.footer
	if !bytes.Equal(buf[1:5], extendedMagic) {
		return t.corrupt(f.offset+1, "bad extended magic % x in a format_version 6 footer", buf[1:5])
	}
	stored := binary.LittleEndian.Uint32(buf[5:])
	f.contextBase = binary.LittleEndian.Uint32(buf[9:])
	if contextModifier(f.contextBase, 0) == 0 {
		return t.corrupt(f.offset, "invalid base context checksum 0")
	}
	if f.checksum != checksumNone {
		cp := append([]byte(nil), buf...)
		binary.LittleEndian.PutUint32(cp[5:], 0)
		// The footer's checksum covers all of it: its last byte plays the part a block's
		// trailer type byte plays in blockChecksum.
		want := blockChecksum(f.checksum, cp) + contextModifier(f.contextBase, uint64(f.offset))
		if want != stored {
			return t.corrupt(f.offset, "footer checksum mismatch: stored %#08x, computed %#08x", stored, want)
		}
	}
	size := uint64(binary.LittleEndian.Uint32(buf[13:]))
	end := uint64(f.offset) - trailerLen
	if size > end {
		return t.corrupt(f.offset, "metaindex size %d exceeds the file", size)
	}
	if binary.LittleEndian.Uint64(buf[33:41]) != 0 {
		return t.unsupported(f.offset, "format_version 6 footer feature (reserved bytes set)")
	}
	f.metaindex = handle{offset: end - size, size: size}
	return nil
}
