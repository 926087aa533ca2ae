// Package bulkload is the file side of a bulk load: the provider layout of Apache Pegasus
// (operations.md §2), the preparation of that layout from a CSV or JSON-lines file (what
// `pegasus bulkload prepare` runs), and the download of one partition's files by a replica,
// checked and made ready for Pebble's Ingest.
//
// # Layout
//
//	<root>/<cluster>/<app>/bulk_load_info              {"app_id":..,"app_name":..,"partition_count":..}
//	<root>/<cluster>/<app>/<pidx>/bulk_load_metadata   {"files":[{"name","size","md5"}],"file_total_size":N}
//	<root>/<cluster>/<app>/<pidx>/<name>.sst           the partition's records
//
// Records are in Pegasus's key schema ([u16 BE hash key length][hash key][sort key]) and a
// value schema: the files [Prepare] writes are Pebble SSTs of data version 1, the form the
// stores keep; files written by RocksDB (pegasus-spark, RocksDB's SstFileWriter) are RocksDB
// block-based tables, read by package rocksdb.
//
// # Download
//
// [Download] fetches a partition's files, each checked by size and md5 against
// bulk_load_metadata. A Pebble SST is then read through once: every key must belong to the
// partition (crc64 of the hash key modulo the partition count) and every value must have a
// data version 1 header. A RocksDB SST is converted as it is read (one block at a time, so
// memory does not grow with the file) into a Pebble SST of the same records: the merged
// live records (deletions and range deletions honoured), each key checked against the
// partition, each value turned from the file's data version (v0, v1, or v2's
// self-describing first byte) into data version 1. A file that fails any of this fails the
// download with an error naming the file (and, for a damaged RocksDB file, the offset).
package bulkload
