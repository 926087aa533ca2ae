package rocksdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Options tune [Open]; nil means defaults.
type Options struct {
	// GlobalSeqNum, when not 0, is the sequence number of every key and range tombstone of
	// an ingested (external) file, as the database's MANIFEST records it: such files store
	// 0 in their keys. When 0, the file's own global_seqno property is used, if it has one.
	GlobalSeqNum uint64
	// MaxBlockSize bounds a block's size, stored and decompressed; a block claiming more
	// fails to read with a CorruptionError. Default 256 MiB.
	MaxBlockSize int
}

const defaultMaxBlockSize = 256 << 20

// Meta block names in the metaindex.
const (
	metaProperties     = "rocksdb.properties"
	metaPropertiesOld  = "rocksdb.stats"
	metaRangeDel       = "rocksdb.range_del"
	metaCompressionDic = "rocksdb.compression_dict"
	metaIndex          = "rocksdb.index" // format_version 6: the index handle moved here
)

// Index types (the rocksdb.block.based.table.index.type property).
const (
	indexBinarySearch          = 0
	indexHashSearch            = 1
	indexTwoLevel              = 2
	indexBinarySearchWithFirst = 3
)

// readaheadSize is how much of the file a table iterator reads at once while stepping
// through data blocks, which lie in file order.
const readaheadSize = 256 << 10

// Table is an open RocksDB block-based table file (an SST). It reads the file through the
// io.ReaderAt one block at a time and holds only the footer, the properties and the
// compression dictionary in memory. A Table is safe for concurrent use by several
// iterators; each iterator is for one goroutine.
type Table struct {
	r    io.ReaderAt
	size int64
	name string
	opts Options

	footer    footer
	props     Properties
	index     handle
	rangeDel  handle // zero size: none
	dict      []byte
	globalSeq uint64
	hasGlobal bool

	zstdOnce sync.Once
	zstd     *zstd.Decoder
	zstdErr  error
}

// Open reads the footer, the metaindex and the properties of the table file of size bytes
// that r reads; name identifies the file in errors. It returns a [CorruptionError] for a
// damaged file and an [UnsupportedError] for a valid table it cannot read (a plain table,
// format_version > 6).
func Open(r io.ReaderAt, size int64, name string, opts *Options) (*Table, error) {
	t := &Table{r: r, size: size, name: name}
	if opts != nil {
		t.opts = *opts
	}
	if t.opts.MaxBlockSize <= 0 {
		t.opts.MaxBlockSize = defaultMaxBlockSize
	}
	if err := t.readFooter(); err != nil {
		return nil, err
	}
	if err := t.readMeta(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Table) readMeta() error {
	var b blockBuf
	mi, err := t.readBlock(t.footer.metaindex, "metaindex", &b, t.footer.offset)
	if err != nil {
		return err
	}
	metaOff := int64(t.footer.metaindex.offset)
	var it blockIter
	if err := it.init(t, metaOff, "metaindex", mi, false); err != nil {
		return err
	}
	var props, dict handle
	haveIndex := t.footer.formatVersion < 6
	t.index = t.footer.index
	err = it.each(func(key, val []byte) error {
		name := string(key)
		var dst *handle
		switch {
		case name == metaProperties, name == metaPropertiesOld && props.size == 0:
			dst = &props
		case name == metaRangeDel:
			dst = &t.rangeDel
		case name == metaCompressionDic:
			dst = &dict
		case name == metaIndex:
			dst, haveIndex = &t.index, true
		default:
			return nil // filters, hash index prefixes: not needed to read the data
		}
		h, n, ok := decodeHandle(val)
		if !ok || n != len(val) {
			return t.corrupt(metaOff, "metaindex entry %q: bad block handle", name)
		}
		*dst = h
		return nil
	})
	if err != nil {
		return err
	}
	if !haveIndex {
		return t.corrupt(metaOff, "format_version 6 metaindex has no %s entry", metaIndex)
	}
	if props.size > 0 {
		block, err := t.readBlock(props, "properties", &b, metaOff)
		if err != nil {
			return err
		}
		if err := t.parseProperties(block, int64(props.offset)); err != nil {
			return err
		}
	}
	if dict.size > 0 {
		block, err := t.readBlock(dict, "compression dictionary", &b, metaOff)
		if err != nil {
			return err
		}
		t.dict = append([]byte(nil), block...)
	}
	switch t.props.IndexType {
	case indexBinarySearch, indexHashSearch, indexTwoLevel, indexBinarySearchWithFirst:
	default:
		return t.unsupported(int64(props.offset), "index type %d", t.props.IndexType)
	}
	t.globalSeq = t.props.GlobalSeqNum
	if t.opts.GlobalSeqNum != 0 {
		t.globalSeq = t.opts.GlobalSeqNum
	}
	// Only ingested files (external_sst_file.version >= 2) have a global sequence number;
	// version 1 files carried real sequence numbers.
	t.hasGlobal = t.globalSeq != 0 && (t.props.ExternalFileVersion >= 2 || t.opts.GlobalSeqNum != 0)
	return nil
}

// Name is the name Open was given.
func (t *Table) Name() string { return t.name }

// FormatVersion is the table's format_version, from its footer (0 for a legacy footer).
func (t *Table) FormatVersion() uint32 { return t.footer.formatVersion }

// Properties returns the table's properties. The caller must not modify them (Raw included).
func (t *Table) Properties() *Properties { return &t.props }

// Kind is the type of an internal key: what the entry does to its user key.
type Kind uint8

// The kinds an SST holds (RocksDB's ValueType).
const (
	KindDelete              Kind = 0x0
	KindPut                 Kind = 0x1
	KindMerge               Kind = 0x2
	KindSingleDelete        Kind = 0x7
	KindRangeDelete         Kind = 0xF // only in the range deletion block
	KindBlobIndex           Kind = 0x11
	KindDeleteWithTimestamp Kind = 0x14
	KindWideColumnEntity    Kind = 0x16
	// KindPutPreferredSeqNum is a put (RocksDB's TimedPut) whose stored value ends in an
	// 8-byte preferred sequence number, used for data tiering; the value before it is the
	// user's.
	KindPutPreferredSeqNum Kind = 0x18
)

func (k Kind) String() string {
	switch k {
	case KindDelete:
		return "delete"
	case KindPut:
		return "put"
	case KindMerge:
		return "merge"
	case KindSingleDelete:
		return "single delete"
	case KindRangeDelete:
		return "range delete"
	case KindBlobIndex:
		return "blob index"
	case KindDeleteWithTimestamp:
		return "delete with timestamp"
	case KindWideColumnEntity:
		return "wide-column entity"
	case KindPutPreferredSeqNum:
		return "put with preferred seqno"
	}
	return fmt.Sprintf("kind %#x", uint8(k))
}

// InternalKey is a user key with the sequence number and kind RocksDB stores after it (in
// 8 bytes: seq<<8 | kind). UserKey aliases the iterator's buffer.
type InternalKey struct {
	UserKey []byte
	SeqNum  uint64
	Kind    Kind
}

// parseInternalKey splits an internal key; ok is false when it is shorter than 8 bytes.
func parseInternalKey(k []byte) (InternalKey, bool) {
	if len(k) < 8 {
		return InternalKey{}, false
	}
	n := len(k) - 8
	tr := binary.LittleEndian.Uint64(k[n:])
	return InternalKey{UserKey: k[:n], SeqNum: tr >> 8, Kind: Kind(tr)}, true
}

// Iterator steps through every point entry of one table in file order: user keys
// ascending and, for one user key, newest (highest sequence number) first. It returns
// deletions and merges as they are stored; [MergedIterator] resolves them. Use it as
// `for it.Next() { it.Key(); it.Value() }` then check it.Err(). An Iterator holds at most
// one block of each index level and one read-ahead window of data blocks.
type Iterator struct {
	t   *Table
	err error

	top      indexIter // the index, or a partitioned index's top level
	topBuf   blockBuf
	part     indexIter // partitioned index: the current partition
	partBuf  blockBuf
	inPart   bool
	data     blockIter
	dataBuf  blockBuf
	inData   bool
	started  bool
	done     bool
	cur      InternalKey
	prevKey  []byte
	havePrev bool
	prevSeq  uint64
	// Blocks lie in file order: the next data block (and index partition) must start at or
	// after these, so a damaged index cannot make the iterator read a block twice.
	nextData, nextPart uint64
	hashed             int // data blocks with a hash index (for tests)
}

// inOrder checks that h, from the index block at ref, starts at or after *next and moves
// *next past it.
func (it *Iterator) inOrder(h handle, next *uint64, what string, ref int64) bool {
	if h.offset < *next {
		return it.fail(it.t.corrupt(ref, "%s block at offset %d overlaps or precedes the previous one (which ended at %d)", what, h.offset, *next))
	}
	*next = h.offset + h.size + trailerLen
	return true
}

// NewIterator returns an iterator positioned before the table's first entry.
func (t *Table) NewIterator() *Iterator {
	it := &Iterator{t: t}
	it.dataBuf.readahead = readaheadSize
	return it
}

// Next advances to the next entry and reports whether there is one; false at the end or on
// an error (see Err).
func (it *Iterator) Next() bool {
	if it.done {
		return false
	}
	if !it.started {
		it.started = true
		ref := it.t.footer.offset // where the index handle is: the footer, or from format_version 6 the metaindex
		if it.t.footer.formatVersion >= 6 {
			ref = int64(it.t.footer.metaindex.offset)
		}
		if !it.openIndex(it.t.index, &it.top, &it.topBuf, "index", ref) {
			return false
		}
	}
	for {
		if it.inData {
			ok, err := it.data.next()
			if err != nil {
				return it.fail(err)
			}
			if ok {
				return it.setKey()
			}
			it.inData = false
		}
		h, ref, ok := it.nextDataHandle()
		if !ok || !it.inOrder(h, &it.nextData, "data", ref) {
			return false
		}
		block, err := it.t.readBlock(h, "data", &it.dataBuf, ref)
		if err != nil {
			return it.fail(err)
		}
		if err := it.data.init(it.t, int64(h.offset), "data", block, false); err != nil {
			return it.fail(err)
		}
		if it.data.hashed {
			it.hashed++
		}
		it.inData = true
	}
}

// nextDataHandle returns the handle of the next data block and the offset of the index
// block it came from, descending into index partitions for a two-level index.
func (it *Iterator) nextDataHandle() (handle, int64, bool) {
	for {
		if it.inPart {
			ok, err := it.part.next()
			if err != nil {
				return handle{}, 0, it.fail(err)
			}
			if ok {
				return it.part.h, it.part.off, true
			}
			it.inPart = false
		}
		ok, err := it.top.next()
		if err != nil {
			return handle{}, 0, it.fail(err)
		}
		if !ok {
			it.done = true
			return handle{}, 0, false
		}
		h := it.top.h
		if it.t.props.IndexType != indexTwoLevel {
			return h, it.top.off, true
		}
		if !it.inOrder(h, &it.nextPart, "index partition", it.top.off) || !it.openIndex(h, &it.part, &it.partBuf, "index partition", it.top.off) {
			return handle{}, 0, false
		}
		it.inPart = true
	}
}

func (it *Iterator) openIndex(h handle, x *indexIter, b *blockBuf, what string, ref int64) bool {
	block, err := it.t.readBlock(h, what, b, ref)
	if err != nil {
		return it.fail(err)
	}
	p := &it.t.props
	x.delta = p.IndexValueIsDeltaEncoded
	x.firstKey = p.IndexType == indexBinarySearchWithFirst
	x.h = handle{}
	if err := x.init(it.t, int64(h.offset), what, block, x.delta); err != nil {
		return it.fail(err)
	}
	return true
}

// setKey parses the current data entry's internal key and checks that keys ascend.
func (it *Iterator) setKey() bool {
	k, ok := parseInternalKey(it.data.key)
	if !ok {
		return it.fail(it.data.bad("internal key of %d bytes", len(it.data.key)))
	}
	if it.t.hasGlobal {
		k.SeqNum = it.t.globalSeq
	}
	if it.havePrev {
		c := bytes.Compare(it.prevKey, k.UserKey)
		if c > 0 || c == 0 && it.prevSeq <= k.SeqNum && !it.t.hasGlobal {
			return it.fail(it.data.bad("key %q seq %d after key %q seq %d: out of order", k.UserKey, k.SeqNum, it.prevKey, it.prevSeq))
		}
	}
	it.prevKey = append(it.prevKey[:0], k.UserKey...)
	it.prevSeq, it.havePrev = k.SeqNum, true
	it.cur = k
	return true
}

func (it *Iterator) fail(err error) bool {
	it.err, it.done = err, true
	return false
}

// Key returns the current entry's internal key; its UserKey is valid until the next call
// to Next.
func (it *Iterator) Key() InternalKey { return it.cur }

// Value returns the current entry's value, valid until the next call to Next.
func (it *Iterator) Value() []byte { return it.data.val }

// Err returns the error that ended the iteration, if any: a [CorruptionError], an
// [UnsupportedError] or a read error of the underlying file.
func (it *Iterator) Err() error { return it.err }

// RangeTombstone deletes every key in [Start, End) whose sequence number is below SeqNum.
type RangeTombstone struct {
	Start, End []byte
	SeqNum     uint64
}

// RangeTombstones reads the table's range deletion block. The slices are the caller's.
func (t *Table) RangeTombstones() ([]RangeTombstone, error) {
	if t.rangeDel.size == 0 {
		return nil, nil
	}
	var b blockBuf
	block, err := t.readBlock(t.rangeDel, "range deletion", &b, int64(t.footer.metaindex.offset))
	if err != nil {
		return nil, err
	}
	off := int64(t.rangeDel.offset)
	var it blockIter
	if err := it.init(t, off, "range deletion", block, false); err != nil {
		return nil, err
	}
	var out []RangeTombstone
	err = it.each(func(key, val []byte) error {
		k, ok := parseInternalKey(key)
		if !ok || k.Kind != KindRangeDelete {
			return it.bad("range deletion entry is not a range tombstone key")
		}
		seq := k.SeqNum
		if t.hasGlobal {
			seq = t.globalSeq
		}
		if bytes.Compare(k.UserKey, val) >= 0 {
			return nil // empty range: deletes nothing
		}
		out = append(out, RangeTombstone{
			Start:  append([]byte(nil), k.UserKey...),
			End:    append([]byte(nil), val...),
			SeqNum: seq,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// isBytewise reports whether a comparator name orders keys as bytes, as every Pegasus
// table does (and as merging tables requires). A table without properties records none.
// (The user-defined-timestamp variants, "leveldb.BytewiseComparator.u64ts", order keys that
// end in a timestamp and are not bytewise.)
func isBytewise(name string) bool {
	return name == "" || name == "leveldb.BytewiseComparator"
}
