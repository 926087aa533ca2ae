// Package meta is the gopegasus meta server: it holds the cluster map (tables, the placement
// of their partitions on replica servers, the highest ballot of every partition), tracks the
// replica servers' liveness, and answers the Pegasus meta RPCs that official clients send
// (protocol.md §6) on a port that also serves HTTP.
//
// # State
//
// The cluster map is durable and changes only through mutations (create a table, drop it,
// update its envs, raise ballots, purge expired dropped tables, create the initial tables).
// A mutation is applied to a copy of the map, the copy is saved ([store]: for now the whole
// map as <DataDir>/cluster.json, replaced atomically and fsynced), and only then does it
// become current and the RPC get its reply. Applying is deterministic, so the same mutations
// can later be replicated through a raft group of metas without touching the handlers.
//
// Everything else is volatile and rebuilt from the replica servers' [cluster.SyncRequest]s
// after a restart: which servers are alive (a sync within [Config].NodeGrace) and which
// replica leads each partition. A partition's ballot is the highest leader term ever
// reported by one of its members (at least 1), persisted before it is used, so it never
// decreases. Its primary is the alive placement member whose latest report says it is the
// raft leader in exactly that term; a claim with a lower term is stale and ignored. With a primary, the secondaries are
// the other alive placement members; without one there are none.
//
// # Concurrency
//
// One goroutine, started by [Server.Run], owns the map and the node table; every RPC handler
// sends it a request and waits for it to run. Persisting happens on that goroutine too, so a
// reply never reports a change that is not yet durable.
package meta
