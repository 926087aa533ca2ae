package rocksdb

import (
	"encoding/binary"
	"errors"
)

// Properties are what a table's properties block records about it. Numbers are as RocksDB
// counted them when it wrote the file; sizes are in bytes.
type Properties struct {
	ColumnFamilyID   uint64 // UnknownColumnFamily when the writer did not know it
	ColumnFamilyName string
	Comparator       string // "leveldb.BytewiseComparator" for every Pegasus table
	MergeOperator    string // "nullptr" when none was configured
	PrefixExtractor  string
	FilterPolicy     string
	Compression      string // the writer's configured compression, e.g. "Snappy", "ZSTD"

	NumEntries        uint64 // point entries, deletions and merges included
	NumDeletions      uint64
	NumMergeOperands  uint64
	NumRangeDeletions uint64
	NumDataBlocks     uint64
	RawKeySize        uint64
	RawValueSize      uint64
	DataSize          uint64
	IndexSize         uint64
	IndexPartitions   uint64 // > 0 for a partitioned (two-level) index
	TopLevelIndexSize uint64
	FilterSize        uint64

	// IndexType is the table's index_type: 0 binary search, 1 hash search (read as binary
	// search), 2 two-level (partitioned), 3 binary search with each block's first key.
	IndexType uint32
	// IndexKeyIsUserKey: index separators are user keys, not internal keys (format_version
	// >= 3 writes them so when it can).
	IndexKeyIsUserKey bool
	// IndexValueIsDeltaEncoded: index values after a restart point hold only the size
	// difference from the previous block's handle (format_version >= 4).
	IndexValueIsDeltaEncoded bool

	CreationTime     uint64 // unix seconds; 0 if unknown
	FileCreationTime uint64 // unix seconds; 0 if unknown
	DBID             string
	DBSessionID      string

	// ExternalFileVersion is set (>= 1) in files written by SstFileWriter for ingestion;
	// GlobalSeqNum is the sequence number RocksDB gave all of its keys at ingestion, when it
	// wrote it into the file (RocksDB 6.x and later usually record it only in the MANIFEST).
	ExternalFileVersion uint32
	GlobalSeqNum        uint64

	// Raw holds every property as stored, built-in and user-collected alike.
	Raw map[string][]byte
}

// UnknownColumnFamily is the column family ID of a table written without one.
const UnknownColumnFamily = 1<<31 - 1

var errBadProperty = errors.New("bad property value")

// parseProperties reads the properties block's entries, whose keys are property names.
func (t *Table) parseProperties(block []byte, off int64) error {
	var it blockIter
	if err := it.init(t, off, "properties", block, false); err != nil {
		return err
	}
	p := &t.props
	p.Raw = make(map[string][]byte)
	return it.each(func(key, v []byte) error {
		name := string(key)
		p.Raw[name] = append([]byte(nil), v...)
		var err error
		u := func(dst *uint64) {
			x, n := binary.Uvarint(v)
			if n <= 0 || n != len(v) {
				err = errBadProperty
				return
			}
			*dst = x
		}
		switch name {
		case "rocksdb.column.family.id":
			u(&p.ColumnFamilyID)
		case "rocksdb.column.family.name":
			p.ColumnFamilyName = string(v)
		case "rocksdb.comparator":
			p.Comparator = string(v)
		case "rocksdb.merge.operator":
			p.MergeOperator = string(v)
		case "rocksdb.prefix.extractor.name":
			p.PrefixExtractor = string(v)
		case "rocksdb.filter.policy":
			p.FilterPolicy = string(v)
		case "rocksdb.compression":
			p.Compression = string(v)
		case "rocksdb.num.entries":
			u(&p.NumEntries)
		case "rocksdb.deleted.keys":
			u(&p.NumDeletions)
		case "rocksdb.merge.operands":
			u(&p.NumMergeOperands)
		case "rocksdb.num.range-deletions":
			u(&p.NumRangeDeletions)
		case "rocksdb.num.data.blocks":
			u(&p.NumDataBlocks)
		case "rocksdb.raw.key.size":
			u(&p.RawKeySize)
		case "rocksdb.raw.value.size":
			u(&p.RawValueSize)
		case "rocksdb.data.size":
			u(&p.DataSize)
		case "rocksdb.index.size":
			u(&p.IndexSize)
		case "rocksdb.index.partitions":
			u(&p.IndexPartitions)
		case "rocksdb.top-level.index.size":
			u(&p.TopLevelIndexSize)
		case "rocksdb.filter.size":
			u(&p.FilterSize)
		case "rocksdb.index.key.is.user.key":
			var x uint64
			u(&x)
			p.IndexKeyIsUserKey = x != 0
		case "rocksdb.index.value.is.delta.encoded":
			var x uint64
			u(&x)
			p.IndexValueIsDeltaEncoded = x != 0
		case "rocksdb.creation.time":
			u(&p.CreationTime)
		case "rocksdb.file.creation.time":
			u(&p.FileCreationTime)
		case "rocksdb.identity":
			p.DBID = string(v)
		case "rocksdb.session.id":
			p.DBSessionID = string(v)
		case "rocksdb.block.based.table.index.type":
			if len(v) != 4 {
				err = errBadProperty
				break
			}
			p.IndexType = binary.LittleEndian.Uint32(v)
		case "rocksdb.external_sst_file.version":
			if len(v) != 4 {
				err = errBadProperty
				break
			}
			p.ExternalFileVersion = binary.LittleEndian.Uint32(v)
		case "rocksdb.external_sst_file.global_seqno":
			if len(v) != 8 {
				err = errBadProperty
				break
			}
			p.GlobalSeqNum = binary.LittleEndian.Uint64(v)
		}
		if err != nil {
			return t.corrupt(off, "property %q: bad value % x", name, v)
		}
		return nil
	})
}
