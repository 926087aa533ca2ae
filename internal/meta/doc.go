// Package meta is the gopegasus meta server: it holds the cluster map (tables, the placement
// of their partitions on replica servers, the highest ballot of every partition), tracks the
// replica servers' liveness, and answers the Pegasus meta RPCs that official clients send
// (protocol.md §6) on a port that also serves HTTP.
//
// # State
//
// The cluster map is durable and changes only through mutations (create a table, drop it,
// recall it, update its envs, raise ballots, record a new replica server, purge expired
// dropped tables, create the initial tables). Applying a mutation is deterministic, so the meta servers
// replicate the map as the state machine of a raft group (go.etcd.io/raft/v3): a mutation is
// proposed by the leader, committed by a majority, and applied in log order on every meta.
// The raft log lives in <DataDir>/raft (internal/raftlog); every [Config].SnapshotEntries
// mutations the whole map is saved to <DataDir>/snapshot.json and the log is truncated there.
// Raft messages between the metas travel through internal/raftnet; a meta that is behind or
// new gets the map as one raft snapshot message among them. A group is created from a
// snapshot at index 1 holding the members and an empty map.
//
// Only the leader serves. The others answer every meta RPC with ERR_FORWARD_TO_OTHERS naming
// the leader where protocol.md §6.2 says, replica servers' syncs likewise, and HTTP metadata
// queries with a 307 to the leader. An elected leader answers ERR_SERVICE_NOT_ACTIVE until
// it applied an entry of its own term (everything committed before is then in its map).
//
// Everything else is soft state, rebuilt from the replica servers' [cluster.SyncRequest]s:
// which servers are alive (a sync within [Config].NodeGrace) and which replica leads each
// partition. A new leader starts every known server's clock at its election, so healthy
// servers are not declared dead by a change of meta leader. A partition's ballot is the
// highest leader term ever reported by one of its members (at least 1), committed through the
// group before it is used, so it never decreases, whichever meta leads. Its primary is the
// alive placement member whose latest report says it is the raft leader in exactly that
// term; a claim with a lower term is stale and ignored; until the first report reaches a new
// meta leader, a partition has its ballot and no primary. With a primary, the secondaries are
// the other alive placement members; without one there are none.
//
// The group's membership changes with the remote commands meta-add and meta-remove, run on
// the leader (raft configuration changes, one at a time).
//
// # Balancer
//
// The meta function level (RPC_CM_CONTROL_META) and the servers being decommissioned are in
// the map. In lively mode the leader moves replicas and primaries until every alive server's
// counts are within one of the mean, and in steady or lively mode it drains the leaving
// servers, by changing placements that the partitions' raft leaders then carry out; which
// moves are under way is read from the primaries' reports (balancer.go says how).
//
// # Concurrency
//
// One goroutine, started by [Server.Run], owns the map and the node table; every RPC handler
// sends it a request and waits for it to run. A second one drives the raft group; the first
// waits for each mutation it proposes to be applied, so a reply never reports a change that
// is not yet committed by a majority of the metas.
//
// [Server.Run] serves until [Server.Close] (immediate) or [Server.Shutdown] (graceful: the
// requests in flight finish first), or until its context ends (as Close), and returns
// [ErrServerClosed]. The RPC server stops first, then the raft group and the state loop,
// then the raft log closes.
package meta
