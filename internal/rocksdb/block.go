package rocksdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// blockBuf is the memory one level of an iteration reads blocks into: the raw bytes of the
// block as stored (with a read-ahead window for data blocks, which are read in file order)
// and its decompressed contents. A block returned by readBlock stays valid until the next
// readBlock with the same blockBuf.
type blockBuf struct {
	readahead int
	window    []byte // file bytes [winStart, winStart+len(window))
	winStart  int64
	out       []byte
	blocks    [256]int // blocks read, by compression type (for tests)
}

// readAt reads exactly len(p) bytes at off, reporting a short file as corruption.
func (t *Table) readAt(p []byte, off int64) error {
	n, err := t.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return t.corrupt(off, "truncated: read %d of %d bytes", n, len(p))
	}
	return fmt.Errorf("rocksdb: read %s at offset %d: %w", t.name, off, err)
}

// raw returns the n file bytes at off, from the read-ahead window when there is one.
func (b *blockBuf) raw(t *Table, off int64, n int) ([]byte, error) {
	if off >= b.winStart && off+int64(n) <= b.winStart+int64(len(b.window)) {
		s := off - b.winStart
		return b.window[s : s+int64(n)], nil
	}
	want := n
	if want < b.readahead {
		want = b.readahead
		// Never read ahead past the blocks into the footer; the file may be shorter than
		// it claims, and then the block itself must be reported, not the read-ahead.
		if max := t.footer.offset - off; int64(want) > max {
			want = int(max)
		}
	}
	if cap(b.window) < want {
		b.window = make([]byte, want)
	}
	b.window = b.window[:want]
	b.winStart = off
	if err := t.readAt(b.window, off); err != nil {
		b.window = b.window[:0]
		return nil, err
	}
	return b.window[:n], nil
}

// readBlock reads the block at h, checks its trailer's checksum and returns its
// decompressed contents. what names the block in errors; ref is the offset of the structure
// that holds the handle (an index block, the metaindex, the footer), which errors name when
// the handle itself is wrong.
func (t *Table) readBlock(h handle, what string, b *blockBuf, ref int64) ([]byte, error) {
	end := uint64(t.footer.offset)
	if h.offset > end || h.size > end-h.offset || h.size+trailerLen > end-h.offset {
		return nil, t.corrupt(ref, "%s handle (offset %d, size %d) outside the file's %d bytes of blocks", what, h.offset, h.size, end)
	}
	off := int64(h.offset)
	if h.size > uint64(t.opts.MaxBlockSize) {
		return nil, t.corrupt(off, "%s block of %d bytes exceeds the %d-byte limit", what, h.size, t.opts.MaxBlockSize)
	}
	n := int(h.size)
	raw, err := b.raw(t, off, n+trailerLen)
	if err != nil {
		return nil, err
	}
	if t.footer.checksum != checksumNone {
		stored := binary.LittleEndian.Uint32(raw[n+1:])
		got := blockChecksum(t.footer.checksum, raw[:n+1]) + contextModifier(t.footer.contextBase, h.offset)
		if got != stored {
			return nil, t.corrupt(off, "%s block checksum mismatch (%s): stored %#08x, computed %#08x", what, t.footer.checksum, stored, got)
		}
	}
	c := compressionType(raw[n])
	b.blocks[c]++
	if c == compressionNone {
		return raw[:n], nil
	}
	out, err := t.decompress(c, raw[:n], b.out)
	if err != nil {
		if errors.Is(err, errUnsupportedCompression) {
			return nil, t.unsupported(off, "%s in %s block", c, what)
		}
		return nil, t.corrupt(off, "%s block: %v", what, err)
	}
	b.out = out
	return out, nil
}

// blockIter steps through the entries of one decoded block: each entry is the length of
// the prefix it shares with the previous key, the length of the rest of its key, the length
// of its value (absent in index blocks with delta-encoded values), the rest of the key and
// the value. A restart array and a packed count end the block (and, for data blocks built
// with a hash index, the hash buckets sit between them).
type blockIter struct {
	t       *Table
	off     int64 // file offset of the block, for errors
	what    string
	data    []byte // the entries, without restart array or hash index
	pos     int    // offset of the next entry in data
	key     []byte // current key, rebuilt from the shared prefix
	val     []byte // current value (aliases the block)
	shared  int    // shared prefix length of the current entry
	noValue bool   // index block with delta-encoded values: entries carry no value length
	hashed  bool   // the block has a data block hash index
	// keyBudget bounds the bytes of keys the block may rebuild. Shared prefixes let a block
	// describe keys far longer than itself; RocksDB's restart points (every 16 entries by
	// default) keep that within a small multiple of the block's size, and the budget keeps
	// a crafted block from making iteration quadratic.
	keyBudget int
}

// keyBudgetFactor allows restart intervals up to 256 entries.
const keyBudgetFactor = 256

// init parses the block's restart array and prepares iteration from the first entry.
func (it *blockIter) init(t *Table, off int64, what string, block []byte, noValue bool) error {
	it.t, it.off, it.what, it.noValue, it.hashed = t, off, what, noValue, false
	it.pos, it.key, it.val = 0, it.key[:0], nil
	if len(block) < 4 {
		return t.corrupt(off, "%s block of %d bytes has no restart count", what, len(block))
	}
	end := len(block) - 4
	packed := binary.LittleEndian.Uint32(block[end:])
	if packed&(1<<31) != 0 {
		// Data block hash index: one byte per bucket, then a uint16 bucket count.
		if end < 2 {
			return t.corrupt(off, "%s block too short for its hash index", what)
		}
		buckets := int(binary.LittleEndian.Uint16(block[end-2:]))
		if buckets+2 > end {
			return t.corrupt(off, "%s block hash index of %d buckets exceeds the block", what, buckets)
		}
		end -= buckets + 2
		packed &^= 1 << 31
		it.hashed = true
	}
	if packed >= 1<<28 {
		return t.unsupported(off, "data block footer flags %#x in %s block", packed>>28, what)
	}
	restarts := int(packed)
	if restarts > end/4 {
		return t.corrupt(off, "%s block claims %d restart points in %d bytes", what, restarts, end)
	}
	it.data = block[:end-4*restarts]
	it.keyBudget = keyBudgetFactor*len(block) + 1<<20
	if restarts == 0 && len(it.data) > 0 {
		return t.corrupt(off, "%s block has entries but no restart point", what)
	}
	return nil
}

// next decodes the next entry; false at the end of the block or on error (see err).
func (it *blockIter) next() (bool, error) {
	if it.pos >= len(it.data) {
		return false, nil
	}
	p := it.data[it.pos:]
	var shared, nonShared, valLen uint64
	var n int
	if it.noValue {
		if len(p) >= 2 && p[0] < 0x80 && p[1] < 0x80 {
			shared, nonShared, n = uint64(p[0]), uint64(p[1]), 2
		} else {
			var a, b int
			shared, a = binary.Uvarint(p)
			if a > 0 {
				nonShared, b = binary.Uvarint(p[a:])
			}
			if a <= 0 || b <= 0 {
				return false, it.bad("bad entry header")
			}
			n = a + b
		}
	} else if len(p) >= 3 && p[0] < 0x80 && p[1] < 0x80 && p[2] < 0x80 {
		shared, nonShared, valLen, n = uint64(p[0]), uint64(p[1]), uint64(p[2]), 3
	} else {
		var a, b, c int
		shared, a = binary.Uvarint(p)
		if a > 0 {
			nonShared, b = binary.Uvarint(p[a:])
		}
		if a > 0 && b > 0 {
			valLen, c = binary.Uvarint(p[a+b:])
		}
		if a <= 0 || b <= 0 || c <= 0 {
			return false, it.bad("bad entry header")
		}
		n = a + b + c
	}
	p = p[n:]
	if shared > uint64(len(it.key)) {
		return false, it.bad("entry shares %d bytes with a %d-byte key", shared, len(it.key))
	}
	if nonShared > uint64(len(p)) || valLen > uint64(len(p))-nonShared {
		return false, it.bad("entry of %d+%d bytes overruns the block", nonShared, valLen)
	}
	it.shared = int(shared)
	if it.keyBudget -= int(shared + nonShared); it.keyBudget < 0 {
		return false, it.bad("keys rebuilt from shared prefixes exceed %d times the block's size", keyBudgetFactor)
	}
	it.key = append(it.key[:shared], p[:nonShared]...)
	it.val = p[nonShared : nonShared+valLen]
	it.pos += n + int(nonShared+valLen)
	return true, nil
}

// each calls fn with every remaining entry's key and value (valid during the call), until
// the block ends or fn or the block fails.
func (it *blockIter) each(fn func(key, val []byte) error) error {
	for {
		ok, err := it.next()
		if !ok || err != nil {
			return err
		}
		if err := fn(it.key, it.val); err != nil {
			return err
		}
	}
}

func (it *blockIter) bad(format string, args ...any) error {
	return it.t.corrupt(it.off, "%s block entry at byte %d: %s", it.what, it.pos, fmt.Sprintf(format, args...))
}

// indexIter yields the block handles of an index block (or of a partitioned index's top
// level): each entry's value is a handle, or, when values are delta-encoded and the key
// shares a prefix, only the size difference from the previous handle, whose block is then
// the next one in the file. Tables with index_type kBinarySearchWithFirstKey add each
// block's first key after the handle.
type indexIter struct {
	blockIter
	delta    bool
	firstKey bool
	h        handle
	deltas   int // delta-encoded handles decoded (for tests)
}

func (x *indexIter) next() (bool, error) {
	ok, err := x.blockIter.next()
	if !ok || err != nil {
		return ok, err
	}
	v := x.val
	if x.delta {
		// The value runs to the next entry: decode it from the rest of the block.
		v = x.data[x.pos:]
	}
	used := 0
	if x.delta && x.shared > 0 {
		d, n := binary.Varint(v)
		if n <= 0 {
			return false, x.bad("bad delta-encoded block handle")
		}
		next := x.h.offset + x.h.size + trailerLen
		size := int64(x.h.size) + d
		if size < 0 {
			return false, x.bad("delta-encoded block size %d", size)
		}
		x.h, used = handle{offset: next, size: uint64(size)}, n
		x.deltas++
	} else {
		h, n, ok := decodeHandle(v)
		if !ok {
			return false, x.bad("bad block handle")
		}
		x.h, used = h, n
	}
	if x.firstKey {
		l, n := binary.Uvarint(v[used:])
		if n <= 0 || l > uint64(len(v)-used-n) {
			return false, x.bad("bad first key of block")
		}
		used += n + int(l)
	}
	if x.delta {
		x.pos += used
	}
	return true, nil
}
