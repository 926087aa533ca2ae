// Package dup is duplication: a table of one cluster (the master) copied asynchronously to a
// table of another (the follower), every write shipped in order per partition, as Apache
// Pegasus duplicates tables (operations.md §1). This package holds what the meta and replica
// servers share: the peers configuration, the status rules, the follower's checks, the
// batches of RPC_RRDB_RRDB_DUPLICATE, the routing to the follower's primaries, and the
// [Shipper] each master primary runs. The meta side (lifecycle, RPCs, replicated state) is
// internal/meta's dup.go and dup_driver.go; the replica side (shippers' lifecycle, reports,
// log retention, the follower's apply) is internal/replica's dup.go.
//
// # Configuration
//
// On both clusters' metas and replica servers: [replication] cluster_name names the
// cluster; [pegasus.clusters] maps the other clusters' names to their meta servers;
// [duplication-group] maps every cluster's name (its own included) to its duplication
// cluster id, 1 to 127, the same on both sides. A replica server's cluster id (in every
// value's timetag) is its cluster's [duplication-group] id. [Peers] is the parsed form.
// The master's servers reach the follower cluster as its clients ([ConnConfig]): with TLS
// when [replication] dup_tls is set (needed when the follower has mandatory_tls, whose
// ERR_UNAUTHENTICATED to plaintext [Explain] turns into a hint), else in plaintext.
//
// # Lifecycle
//
// RPC_CM_ADD_DUPLICATION adds a duplication in DS_PREPARE (or DS_LOG without the checkpoint)
// to the table's entry in the cluster map, which the metas replicate: a meta failover keeps
// every duplication with its status and saved progress. The map reaches every replica of the
// table in its assignment (the config sync), and each primary runs one Shipper per
// duplication:
//
//   - DS_PREPARE: the primary takes a Pebble checkpoint of its store, decree D, and reports it
//     (RPC_CM_DUPLICATION_SYNC, checkpoint_prepared). When every partition has one, the meta
//     leader creates the follower table on the follower cluster through its metas (create
//     with the master's envs and duplication.master_cluster, master_metas, master_app_name,
//     follower_app_status=creating; the follower's meta takes the create again as often as
//     it comes) and moves to DS_APP.
//   - DS_APP: each primary seeds the follower partition of the same index: it ships every
//     live record of the checkpoint (the one it took, or a new one when the primary changed)
//     as puts with the records' own timestamps, then reports D as confirmed. When every
//     partition is seeded, the meta marks the follower created (follower_app_status=created),
//     waits for its primaries (and a secondary when it has more than one replica) and moves
//     to DS_LOG.
//   - DS_LOG: each primary ships its raft log's writes from the confirmed decree on. Without
//     a checkpoint, from the first write proposed after the duplication was added.
//   - DS_PAUSE stops shipping (the log is kept, see below); DS_LOG again resumes; DS_REMOVED
//     stops and forgets the duplication (the follower table stays).
//
// The meta leader's steps are a function of the map (statuses, and every partition's
// checkpoint or confirmation), so a new leader resumes them; each is safe to repeat. While a
// step waits on the follower's metas, a status change other than a removal is answered
// ERR_BUSY.
//
// # Shipping
//
// Only idempotent writes travel: PUT, REMOVE, MULTI_PUT, MULTI_REMOVE, each as its original
// request body with its entry's proposal time and the master's cluster id. INCR,
// CHECK_AND_SET and CHECK_AND_MUTATE are decided at apply time: on a duplicated table they
// are refused with ERR_OPERATION_DISABLED (atomic_idempotent, which would turn them into
// puts, is not implemented). Writes that came from another cluster are never shipped on.
// Batches are cut at duplicate_log_batch_bytes (4096) of bodies, at most 1 MiB, sent one
// after the other to the follower's primary of the same partition index (the follower table
// must have the master's partition count), partition_hash the hash of the batch's last key.
// A batch smaller than that (all the shipper had) is followed by a pause of
// dup_batch_linger_ms (10 ms) before the log is read again, so that under load batches
// carry more than the few writes one round trip lets gather: each costs an RPC and a raft
// write with its fsync on the follower. The pause ends early once the log holds a full
// batch's bytes, so a busy partition never waits on a full batch. Order, at-least-once and
// the confirmed decree are as without it; the lag grows by up to the pause.
// A batch not taken is sent again a second later (FAIL_SLOW, the default) or dropped
// (FAIL_SKIP, counted). FAIL_FAST is refused by RPC_CM_MODIFY_DUPLICATION with
// ERR_INVALID_PARAMETERS: upstream stops the server process on such a write, which a
// server here never does.
//
// Shipping is at least once: the meta saves confirmed decrees at most every
// duplication_progress_persist_ms (5 s); a new primary, after a failover or a restart,
// starts from the saved one and ships again what the old one shipped since. Replaying writes
// in order is harmless.
//
// # Follower
//
// A follower's primary checks every entry of a RPC_RRDB_RRDB_DUPLICATE first (cluster id
// configured unless dup_ignore_other_cluster_ids, never its own, an idempotent RPC), then
// proposes the request as one raft write; every follower replica applies its writes with
// the master's timetag (timestamp<<8 | cluster_id<<1 | delete flag). With verify_timetag a
// put is applied only when newer than the value stored (last writer wins); the master sets
// it when dup_verify_timetag is on. Two tables duplicating to each other (master-master)
// need it on both clusters to agree after conflicting writes; removes are not compared, so a
// remove racing a put on the other side may leave the two apart, as upstream.
//
// # Log retention
//
// Every replica of a duplicated table keeps the raft log its duplications have not
// confirmed (the truncation decision moves back to the lowest confirmed decree or seed
// checkpoint), so a new primary finds what it must ship. The log is in memory as well as on
// disk, so this is bounded: past dup_max_retained_log_entries entries the log is truncated
// anyway, the follower never gets those writes, and the duplication is marked lagging: an
// error in the log, the replica metrics dup_lagging and dup_log_dropped_entries,
// "lagging":true in /replica/duplication and /meta/app/duplication, and the partition's
// Lagging in RPC_CM_QUERY_DUPLICATION (field 100 of duplication_partition_state, our own).
package dup
