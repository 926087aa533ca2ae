// Package storage is the partition store of a replica server: one Pebble database per
// partition replica, holding Pegasus records (hash key + sort key -> value with optional TTL)
// and implementing every read and write operation of the Pegasus protocol with Apache
// Pegasus's exact semantics, result codes and limits.
//
// # On-disk layout
//
// Record keys are Pegasus encoded keys (package key): a big-endian uint16 hash key length,
// the hash key, the sort key. Values use Pegasus's value schema, version 1 for every database
// this package creates: a big-endian uint32 expire timestamp (seconds since 2016-01-01 UTC,
// [EpochUnix]; 0 = never), a big-endian uint64 timetag, then the user value. The timetag is
// timestamp_us<<8 | cluster_id<<1 with the delete flag 0; the timestamp is the proposer's
// batch time for put and multi_put and 0 for incr, check-and-set and check-and-mutate, as in
// Apache Pegasus. Databases recorded as version 0 (expire timestamp, then user value) are read
// and written in that version.
//
// # Metadata keys
//
// Every encoded key is at least 2 bytes long, so keys of 0 or 1 byte can never be user data.
// Of those, only the empty key and the single byte 00 also sort below 00 00, the lowest key
// any user range (or a full-partition scan from 00 00) can start at; a 1-byte key like 01
// would land inside a full scan. The store therefore uses exactly these two:
//
//	""    u32 data version, written once when the database is created
//	00    u64 last applied log index || u32 apply clock, rewritten by every Apply
//
// Writes with encoded keys shorter than 2 bytes or with a length prefix longer than the key
// are rejected (code 4), reads of such keys find nothing, and every iterator is bounded below
// by 00 00, so user operations never see or touch metadata.
//
// # Write path and determinism
//
// [DB.Apply] applies one replicated log entry ([Batch]) in one Pebble batch that also stores
// the entry's index, so after a crash the store holds exactly the batches 1..N for
// N = [DB.LastAppliedIndex] and the raft log resumes at N+1. Writes are not fsynced unless
// Options.SyncWrites is set: the raft log is the durability source.
//
// Incr, check-and-set and check-and-mutate read the data inside the apply, through an
// indexed batch, so a mutation sees the effects of earlier mutations of the same batch.
// Replicas applying the same log must store the same bytes and return the same results, so
// Apply never reads the local clock. Its clock, the apply clock, is the largest proposer time
// (Batch.Time) of any batch applied so far; it is persisted with the applied index. It
// decides expiry during the apply (an expired record counts as absent) and is the base of
// the table's default TTL, which also travels in the batch (Batch.DefaultTTL).
//
// Reads use the local clock (Options.Now) to decide expiry, as Apache Pegasus does.
//
// # Reclamation of expired records
//
// Pebble has no compaction filter, so expired records are deleted by a sweeper goroutine.
// Every Options.SweepInterval (default 10 minutes, counted from the end of the previous pass)
// it walks the whole partition in chunks of 1000 records, at most Options.SweepRate records
// per second (default 50000), collecting keys that are expired. For each chunk with
// candidates it takes the apply lock, re-reads every candidate and deletes it only if it is
// still expired both by the local clock and by the apply clock. The lock means no write can
// re-create a key between that check and the delete; the apply-clock condition means a
// deleted record is one every later Apply would also treat as absent, so sweeps (which are
// local and run at different moments on each replica) can never make replicas decide an
// incr or a check differently. Sweeper deletes are ordinary unsynced Pebble deletes; they do
// not change the applied index and, if lost in a crash, the next pass deletes again.
//
// Space bound: a record that expires at time T is deleted by the first sweep pass that starts
// after both clocks pass T, so it lives at most about one SweepInterval plus one pass
// (records / SweepRate) after T, provided writes keep the apply clock moving. Its bytes are
// then freed when Pebble compacts the tombstone together with the record, which Pebble's
// tombstone-density compactions and manual compaction ([DB.StartCompaction]) bring about.
// Until swept, expired records are invisible to every read, count and scan, but they still
// count as examined records in the multi_get and scan limits, as in Apache Pegasus.
//
// Not implemented from Apache Pegasus's compaction filter: rewriting records with expire
// timestamp 0 to the default TTL, the user_specified_compaction rules, and dropping records
// of other partitions after a split.
//
// # Scanner contexts
//
// [DB.GetScanner] returns the first batch of a scan and, if the range is not exhausted,
// stores the scan's Pebble iterator, bounds, filters and options in a context under a new id.
// The iterator pins the data as of get_scanner, so every later batch reads that snapshot.
// [DB.Scan] takes a context out (ids are single use) and stores it again under a fresh id if
// more data remains; [ContextComplete] (-1) ends a scan. Ids are positive int64s from a
// counter seeded with the wall clock in nanoseconds, so they are never 0 or negative and do
// not repeat across restarts. Contexts live in memory only; a context unused for
// Options.ScannerIdleTimeout (default 5 minutes, by Options.Now) is dropped, and a Scan of an
// unknown or dropped id answers code 1 (NotFound). The sweeper goroutine also discards idle
// contexts, releasing their iterators.
//
// # Closing
//
// [DB.Close] may run concurrently with every other method: it waits for the operations in
// progress (each holds the DB's gate, see package lifecycle, for its own duration only, so a
// scan waits for one batch, not for its whole context), refuses the ones that begin after it
// with [ErrClosed], then joins the sweeper and a manual compaction and closes Pebble, which
// panics if used once closed.
//
// # Result codes
//
// Semantic outcomes are RocksDB status codes ([wire.Status]: StatusOK, StatusNotFound,
// StatusInvalidArgument, StatusIncomplete, StatusTryAgain, ...) in the results; Go errors are
// returned only for storage failures, a closed database and stale batch indexes. No input
// makes an operation panic. Filter, check and mutate types are the wire enums of
// [idl.FilterType], [idl.CASCheckType] and [idl.MutateOperation].
package storage
