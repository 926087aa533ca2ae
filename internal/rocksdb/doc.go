// Package rocksdb reads RocksDB block-based table files (SSTs), the files Apache Pegasus's
// storage engine, its offline bulk-load pipelines (RocksDB's SstFileWriter) and its cold
// backups (RocksDB checkpoints) consist of. It is written in Go from RocksDB's published
// description of the format, without cgo, and reads what RocksDB 6.x to 8.x write by default
// and with common options.
//
// # What is read
//
//   - Footers: the legacy (format_version 0) footer and the footers of format_version 1 to
//     6, with their magic numbers; format_version 6 footers carry their own checksum and
//     every block checksum is offset by a per-file context.
//   - Block trailers: compression type and checksum, crc32c (masked), xxHash (XXH32),
//     xxHash64 (its low 32 bits) or XXH3 (its low 32 bits, mixed with the type byte), all
//     verified on every read.
//   - Compression: none, snappy, lz4 and lz4hc, zstd, zlib (raw deflate) and bzip2, with the
//     decompressed-size prefix format_version 2 and later store (and the older layouts), and
//     the compression dictionary of tables written with max_dict_bytes.
//   - Data blocks with restart points (and with the data block hash index, which is skipped).
//   - Index blocks: binary search (and hash search, read as binary search), binary search
//     with first keys, and two-level (partitioned) indexes; values delta-encoded (format
//     version 4 and later) or not; index keys user keys or internal keys. Filters are
//     skipped.
//   - The metaindex, the properties block ([Properties]) and the range deletion block.
//
// Plain and cuckoo tables, blob files (blob indexes in a table), wide-column entities and
// merge operands are refused with an [UnsupportedError]; a damaged file gives a
// [CorruptionError] naming the file and the offset, never a panic or unbounded work.
//
// # Reading
//
// [Open] reads the footer, metaindex and properties. [Table.NewIterator] walks one table's
// entries as stored, with their sequence numbers and kinds. [NewMergedIterator] resolves
// several tables of one column family into the live records a RocksDB read would see:
//
//	f, _ := os.Open(path)
//	st, _ := f.Stat()
//	t, err := rocksdb.Open(f, st.Size(), path, nil)
//	...
//	it := rocksdb.NewMergedIterator(t)
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// Iterators read one block at a time (data blocks through a 256 KiB read-ahead window), so
// memory does not grow with the file.
//
// # What a table alone does not say
//
// A database's MANIFEST holds two facts about its files that the files themselves may lack:
// the global sequence number of an ingested file (pass it as [Options].GlobalSeqNum), and
// the key range of each file, to which RocksDB truncates the file's range tombstones. Read
// without those bounds, a tombstone that RocksDB split across files is applied over its
// whole range; this matters only for keys whose sequence number RocksDB later zeroed.
package rocksdb
