// Package raftlog persists the raft state (log entries, hard state, truncation point) of
// every raft group of a server in one append-only log: a directory of segment files shared
// by all the groups. Groups stage their Ready batches in memory and ask for a sync round
// (syncer.go): one write and one fdatasync of the active segment cover the batches of many
// groups and the client writes in them (group commit).
//
// # Files
//
// A segment is named by its sequence number (0000000000000001.seg, ...) and holds a header
// and records (record.go): entries of a group (a run of consecutive indexes, which also
// replaces every entry of the group from its first index on), a hard state, a truncation
// point, an installed snapshot (its metadata and the hard state that came with it), a
// group's removal, and the seal that ends a segment. Each record carries a CRC-32C of its
// bytes and of the segment's sequence number, and the group id. Records go to the active
// segment; past Options.SegmentSize (64 MiB) the segment is sealed and the next one
// started. A file named spare, a dropped segment kept for reuse or one preallocated with
// zeros while the active segment fills, becomes the next segment: appends to blocks that
// are already written make cheaper fdatasyncs.
//
// # Index and reads
//
// The log keeps in memory, per group, where its live records are: one location per
// entries record, its hard state and its truncation point. The index is built by the same
// rules when records are staged and when segments are replayed on Open. Load reads a
// group's entries from the segments (or from what is staged and not yet written) into a
// raft.MemoryStorage, which the group's raft node then uses; the log holds no entries in
// memory beyond what is staged until the next round (bounded: it writes out staged data
// past 1 MiB without waiting for a sync).
//
// # Truncation, dropping and compaction
//
// Truncate and InstallSnapshot make earlier records dead. A segment is dropped once it and
// every older segment hold no live record, and only after a synced round that covers the
// records that made them dead: segments go oldest first, because a dead record can be what
// keeps an older dead record from coming back in a replay (an entries record that replaced
// a tail). When the oldest segment holds little live data, or the log holds more than
// twice its live data, the groups that hold it back are rewritten: their truncation point,
// hard state and live entries are written again at the end of the log, each as one record
// restating what the group holds, so that a crash in the middle of a rewrite loses nothing;
// then the segment holds nothing live (maint.go).
//
// # Recovery
//
// Open replays the segments in order. The rule for damage:
//
//   - In the last segment, the records are read up to the first one that is cut off, is
//     zeros (space never written) or fails its CRC; that record and everything after it
//     are dropped, with a log line saying where and how many bytes, and the segment is cut
//     there and sealed. This is what a crash leaves: a write that did not reach the disk
//     entirely, or records never synced (never acknowledged: a record is acknowledged
//     only once a round has synced it and everything before it). A bit flip in an
//     acknowledged record of the last segment cannot be told from a torn write, and loses
//     the records after it; raft's replication then brings the replica up to date again.
//   - In any earlier segment, a bad record, a bad header or a missing seal is an error
//     wrapping ErrCorrupt, and Open fails: a segment is sealed and synced before the next
//     one is created, so such damage is never a crash's, and the log never drops
//     acknowledged records from the middle silently.
//   - A last segment whose header a crash never let be written is removed, and segments
//     before a gap in the numbering (left by a drop whose removals reached the disk out of
//     order) are removed.
//
// After a clean Close the active segment ends with a seal.
//
// # Durability
//
// With DurabilityAlways (the default) a round fdatasyncs what it wrote before it answers,
// so a write is acknowledged once it is durable. DurabilityOS answers once the round's
// write has reached the operating system, and fsyncs the log every Options.SyncInterval
// (100 ms): a process crash loses nothing acknowledged, a power loss or kernel crash can
// lose the last interval.
//
// # Disk faults
//
// A write that fails for want of space (ENOSPC) loses nothing: the round's data stays
// staged and is written again, whole and at the same offsets, every Options.NoSpaceRetry
// (100 ms), and the requests of the round wait, unanswered, until a round finds space
// (Log.NoSpace reports it meanwhile; a Close answers them with ErrNoSpace). Any other failed
// write, and every failed fsync, stops the log for good: after a failed fsync the kernel
// may have dropped the pages it could not write, so neither what the round wrote nor a
// later fsync's success can be trusted. The round's requests get the error, every later
// write is refused, and Failed is closed; the log must be reopened, replaying what the disk
// holds. Options.Faults puts a test's faulty disk (package diskfault) under the log.
//
// A raft log directory of an earlier version, a Pebble database, is imported on Open and
// removed (migrate.go).
package raftlog
