// Package replica is the replica server: it hosts the partition replicas the meta leader
// assigns and serves every rrdb RPC on them.
//
// # Partitions
//
// Each partition replica is a member of its partition's raft group (go.etcd.io/raft/v3) and
// has its own Pebble store (package storage) under <data>/<app_id>.<pidx>/data. The primary
// is the raft leader; the meta server reports it, with the raft term as the ballot. One
// goroutine per partition owns the raft state (loop.go); request handlers talk to it through
// channels (partition.go).
//
// Files: server.go (the server, its partitions, the report to the meta), handlers.go (the
// rrdb RPCs), partition.go (a replica as the handlers see it: propose, read barrier),
// proposal.go (the raft entry of a batch of writes), loop.go (the raft loop: readies,
// storage appends, apply, log truncation), reads.go (read index and the lease-read
// shortcut), membership.go (moving the group toward the meta's placement, leader transfer),
// snapshot.go (checkpoint streaming; the other raft messages between servers travel
// through package raftnet), envs.go (table envs, compaction), dropped.go (the replicas of
// dropped tables, kept until they expire), http.go, settings.go, metrics.go.
//
// # Write path
//
// A write handler routes the request (envelope errors of protocol.md §3.2, and a check that
// the key belongs to the partition), encodes it and hands it to the partition's loop. The
// loop batches every write queued at that moment into one raft entry, which also carries
// the proposer's time and the table's default TTL so that every replica applies it the same
// way. The entry is persisted (the raft log of all partitions of the server is one
// append-only log of segment files, package raftlog, whose group commit makes the appends of
// many partitions durable with one fsync) and replicated; once raft commits it, the loop
// applies it to the store and hands each write its result. A write is acknowledged only
// after it is durable on a quorum (with raft_log_durability = os: once a quorum has written
// it to the operating system). The raft log is synced only when raft requires it (new entries, term or
// vote).
//
// The loop uses raft's asynchronous storage writes and never waits for an fsync: a Ready's
// messages to peers (the leader's appends) go out at once, so the leader's fsync overlaps
// the followers'; its storage append is staged in the raft log and queued, and once the
// fsync covering it is done, raft's storage learns the entries and the append's responses
// (a follower's acknowledgement, a vote, raft's own "stable" notice) are delivered, in
// order. Meanwhile the loop goes on stepping messages, taking proposals (the next append
// batches them all), answering reads and applying: raft hands out committed entries once
// they are durable here, and they are applied at once.
//
// # Read path and the clock assumption
//
// Only the leader serves reads, and reads are linearizable: a read is served under the
// leader's lease once the store has applied the leader's read floor, the first entry of its
// term (raised to a later entry that reaches clients otherwise than through the leader's
// answers: a split's cut-over, an ingestion). Not the whole commit index, as raft's
// ReadIndex would ask: only the leader that proposed a write acknowledges it, after
// applying it, so the entries committed and not applied here are writes nobody has
// acknowledged, and every write an earlier leader acknowledged lies below the floor
// (readBarrier in reads.go has the argument; TiKV's local reads rest on the same one). A
// read thus does not wait behind a backlog of big committed writes. The lease is raft's
// ReadOnlyLeaseBased with CheckQuorum, computed by the loop itself; before the floor is
// known (no entry of the term in raft's storage yet) the loop asks raft's read index.
//
// Most reads do not even reach the loop: the loop publishes the floor (atomically, before
// the lease) with a deadline of half an election timeout, renewed every tick while it
// leads and withdrawn when it stops leading or starts a leadership transfer. A read
// handler that finds the deadline ahead and the floor applied reads at once. A loop that
// stalls lets the deadline pass, and its reads then wait for it: a stalled leader cannot
// serve stale reads after a new leader is elected, which takes at least an election
// timeout without its heartbeats.
//
// The lease itself is the leader's own, not only raft's: it holds while a quorum of voters
// (the leader counted) answered an append or heartbeat of its term within half an election
// timeout, as the loop measures on its monotonic clock. raft's CheckQuorum would let a
// leader cut off from its followers believe it leads for up to two election timeouts. And
// after a stall of its loop of a quarter of an election timeout or more (a paused process,
// a starved CPU, a long apply), the answers that queued up meanwhile prove nothing: the
// leader counts again only answers to the heartbeats it sends after the stall (they carry
// the stall's epoch, which raft echoes), and serves lease reads again once a quorum has
// answered them. Meanwhile, its reads wait, and fail once it steps down (reads.go). This
// assumes that clocks of the replica servers advance at the same rate within a small factor (no clock is paused or runs twice as fast as another for the
// duration of an election timeout, 1 s by default); absolute clock values do not matter.
//
// # Catching up, snapshots, membership
//
// A replica that is behind gets the missing entries from the leader's log. When the log has
// been truncated past them (every LogCompactEvery applied entries, after syncing the
// store), the leader streams a Pebble checkpoint of its store over HTTP on the replica port
// (snapshot.go); the follower checks that it comes from a member and opens as a store, steps
// the snapshot message, and swaps the checkpoint in once raft accepted it, before raft
// applies the snapshot (a failed swap puts the previous store back). With a cluster secret
// (Config.Secret), raft messages, forwarded requests and snapshots are taken only from
// connections that authenticated as members (package rpc's peer authentication). The leader
// moves the group toward the meta's placement one change at a time: a new member joins as a
// learner, is promoted once caught up, and only then is a member that left the placement
// removed; leadership is handed to the placement's first member when it is caught up, which
// keeps primaries spread across servers. A replica the meta no longer places on its server
// (it replaced the server while it was down) is deleted once it has gone unassigned for the
// garbage grace (Config.GarbageGrace, a day by default), unless it leads its group.
//
// # Restart
//
// The raft log and hard state survive a crash (synced). The stores keep no write-ahead log
// of their own (storage's NoWAL: every record would otherwise be written and synced twice):
// a crash loses what was applied since a store's last memtable flush, data and applied index
// together, and raft redelivers the entries after the last log truncation point; the store
// skips those it already holds. The log is truncated only after the store is flushed, so
// what a store lost is always still in the log. The stores share one block cache.
//
// # Lifecycle
//
// [Server.Run] serves until [Server.Close] (immediate) or [Server.Shutdown] (graceful), or
// until its context ends (as Close), and returns [ErrServerClosed]. Stopping goes top down:
// the RPC server first (a Shutdown lets the requests in flight finish, which need the
// partitions), then the sync loop and the transport, then every partition, then the raft
// log. Each partition owns its goroutines, its raft loop and the snapshot transfers that loop
// starts (whose context ends with the loop), and stops the one way halt does, whether the
// server stops, its table is dropped or it is garbage: its close waits for the loop and the
// transfers, for incoming transfers (cut off when it stops), then closes the store, which
// waits for the requests still reading it. A Shutdown flushes every store before closing it,
// so the next start replays nothing; a Close leaves that to the raft log, as a crash would.
package replica
