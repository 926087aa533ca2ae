package console

import (
	"context"
	"errors"
	"time"
)

// ErrNotLeader is returned by [Source].ConsoleState when the meta does not serve as the
// leader (any more): the console then sends the browser to the leader.
var ErrNotLeader = errors.New("console: this meta is not the serving leader")

// Source is what the console reads the cluster from: the meta server it is mounted on.
// Its methods are called from the console's HTTP handlers and its sampler goroutine, so
// they must be safe for concurrent use.
type Source interface {
	// Leader returns the address of the metas' leader ("" when unknown) and whether this
	// meta is that leader and serves.
	Leader() (addr string, serving bool)
	// LeaderChanged returns a channel closed when what Leader reports may have changed.
	LeaderChanged() <-chan struct{}
	// ConsoleState returns the cluster as the leader sees it now. It fails with
	// [ErrNotLeader] when this meta does not serve, or with ctx's error. The State is the
	// caller's.
	ConsoleState(ctx context.Context) (*State, error)
}

// State is the meta leader's view of the cluster at one moment: what the console shows
// besides the metrics it samples from the replica servers.
type State struct {
	// Cluster is the cluster's name.
	Cluster string
	// Leader is the address of the meta that made the State (the leader).
	Leader string
	// Term is the metas' raft term.
	Term uint64
	// Metas are the addresses of the meta group's voters, in configuration order.
	Metas []string
	// Nodes are the replica servers the leader knows, sorted by address.
	Nodes []Node
	// Tables are the available tables, by app id.
	Tables []Table
	// Operations are the long operations the meta drives, as they stand now.
	Operations []Operation
}

// Node is one replica server.
type Node struct {
	// Addr is the server's "ip:port" (RPC and HTTP).
	Addr  string
	Alive bool
	// LastSync is when its last report reached this meta; zero when none did since this
	// meta took over as the leader.
	LastSync time.Time
	// Replicas and Primaries count the partitions it serves as primary or secondary, and
	// as primary, in the current partition configurations (as /meta/nodes?detail does).
	Replicas, Primaries int
}

// Table is one available table and its partitions.
type Table struct {
	AppID        int32
	Name         string
	ReplicaCount int32
	// Created is the table's creation time (zero when unknown).
	Created time.Time
	// Envs are the table's envs (the console reads the manual compaction ones).
	Envs       map[string]string
	Partitions []Partition
}

// Partition is one partition's configuration as the meta serves it to clients.
type Partition struct {
	Index  int32
	Ballot int64
	// Primary is the primary's address, "" when the partition has none now.
	Primary string
	// Secondaries are the alive voters other than the primary.
	Secondaries []string
	// Dropped are the dead voters still in the partition's raft group (last_drops).
	Dropped []string
	// Health is one of [Healthy], [Unhealthy], [Unwritable], [Unreadable].
	Health string
}

// Partition health, by Pegasus's rules: healthy has a primary and all its replicas;
// unhealthy misses replicas but can be read and written; unwritable has a primary but too
// few replicas to take writes; unreadable has no primary.
const (
	Healthy    = "healthy"
	Unhealthy  = "unhealthy"
	Unwritable = "unwritable"
	Unreadable = "unreadable"
)

// Operation is one long operation and how far it has come. The meta reports the ones it
// drives (today: replicas rebuilt on a live server after theirs was lost); the console adds
// those it samples from the replica servers (manual compactions). An engine that drives a
// new kind (balancing, split, duplication, backup, restore, bulk load) reports its own with
// its own Kind; the page shows every kind the same way.
type Operation struct {
	// Kind names the operation, e.g. "replica_rebuild" or "manual_compaction".
	Kind string `json:"kind"`
	// Table is the table's name; Partition the partition index, or -1 when the operation
	// concerns the whole table.
	Table     string `json:"table"`
	Partition int32  `json:"partition"`
	// Detail says what is being done, in a few words for a person.
	Detail string `json:"detail"`
	// Done and Total are the progress in Unit (Total 0: unknown).
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
	Unit  string `json:"unit,omitempty"`
}
