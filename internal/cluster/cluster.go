// Package cluster defines how gopegasus servers know each other: a server's identity, and the
// control protocol between replica servers and meta servers. Both are ours, not Apache
// Pegasus's: no official client sends these RPCs.
//
// A server's identity is its advertised "host:port" address: the meta places partitions on
// addresses, replica servers report under theirs, and [MemberID] derives from it the
// server's member id in every raft group it takes part in.
//
// A replica server calls [RPCConfigSync] on the meta leader every beacon interval and at once
// whenever the leadership of one of its partitions changes. The request reports every
// partition replica the server hosts (role, raft term, applied index, voters); the reply
// lists every partition the server should host and the tables that were dropped. The meta
// leader derives partition configurations (primary = raft leader, ballot = its term) from
// these reports, and node liveness from their arrival.
//
// Messages travel as JSON inside a blob argument and a blob reply: the control plane is
// low-rate, and JSON keeps it readable in logs and easy to extend.
package cluster

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"

	"github.com/gopegasus/pegasus/internal/idl"
)

// RPCConfigSync is the name of the replica → meta sync RPC. Args and reply are [idl.Blob]s
// holding a JSON [SyncRequest] and [SyncResponse].
const RPCConfigSync = idl.RPCConfigSync

// MemberID maps a server's address to its raft member id (never 0, which raft reserves):
// the same address is the same member in every group, of metas and of partitions alike.
// Member ids are stored in raft logs and snapshots, so the mapping never changes.
func MemberID(addr string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(addr))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}

// ReplicaState is one partition replica as its server sees it.
type ReplicaState struct {
	AppID          int32 `json:"app_id"`
	PartitionIndex int32 `json:"partition_index"`
	// IsLeader is true when this replica is the raft leader (the primary).
	IsLeader bool `json:"is_leader"`
	// Term is the replica's current raft term; the meta reports the leader's as the ballot.
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	// Voters are the addresses of the group's voters as this replica knows them.
	Voters []string `json:"voters,omitempty"`
	// PartitionCount is the partition count the replica's store owns its keys by, once a
	// split recorded one (0 before any split).
	PartitionCount int32 `json:"partition_count,omitempty"`
	// Split is set while this replica of a parent partition builds its child's copy.
	Split *SplitProgress `json:"split,omitempty"`
}

// SplitProgress is how far a parent replica is in building its child's copy: Ready once the
// copy holds every write the parent applied (the checkpoint, then the parent's log), and
// follows each new one.
type SplitProgress struct {
	Child int32 `json:"child"`
	Ready bool  `json:"ready"`
	// Mirrored is the last parent log index the copy went through.
	Mirrored uint64 `json:"mirrored"`
}

// SplitOrder tells the replicas of a parent partition where its split is (package meta
// decides): build the child's copy while Status is SPLITTING, drop it otherwise; the leader
// cuts the split over (a raft entry after which the parent refuses the child's half) once
// Commit is set. NewCount is the table's partition count after the split.
type SplitOrder struct {
	NewCount int32           `json:"new_count"`
	Status   idl.SplitStatus `json:"status"`
	Commit   bool            `json:"commit,omitempty"`
}

// SyncRequest is a replica server's report.
type SyncRequest struct {
	// Node is the server's advertised "host:port", the address clients dial.
	Node string `json:"node"`
	// StartTime is when the server process started (unix seconds).
	StartTime int64          `json:"start_time"`
	Replicas  []ReplicaState `json:"replicas"`
	// The long operations' reports (ops.go).
	Backups   []BackupReport   `json:"backups,omitempty"`
	Restores  []RestoreReport  `json:"restores,omitempty"`
	BulkLoads []BulkLoadReport `json:"bulk_loads,omitempty"`
	// KnownAssignments is the AssignmentsHash of the last answer the server acted on (0:
	// none): see PlacementHash.
	KnownAssignments uint64 `json:"known_assignments,omitempty"`
}

// Assignment is one partition a replica server should host.
type Assignment struct {
	AppID          int32  `json:"app_id"`
	PartitionIndex int32  `json:"partition_index"`
	AppName        string `json:"app_name"`
	PartitionCount int32  `json:"partition_count"`
	// Members are the addresses of the partition's replicas, in placement order: the first
	// is where the primary should preferably be. A new replica starts its raft group with
	// exactly these voters.
	Members []string `json:"members"`
	// Envs are the table's envs. In a [SyncResponse] they travel once per table instead
	// ([SyncResponse.Envs]), and [SyncResponse.FillEnvs] sets them here.
	Envs map[string]string `json:"envs,omitempty"`
	// Join is set when this server is added to a partition that already exists (replacing a
	// lost replica), and for every partition a split made: its replica starts empty and
	// waits for the leader to send it the log or a snapshot (a split child's replica built
	// on its parent's server starts from that copy instead). Without Join, a new replica
	// bootstraps the group with Members as voters, which is only right when the partition is
	// new.
	Join bool `json:"join,omitempty"`
	// Dups are the table's duplications to other clusters (package dup): the partition's
	// primary ships them, and every replica keeps the log they have not confirmed.
	Dups []DupAssignment `json:"dups,omitempty"`
	// PartitionCount (above) is the count this partition owns its keys by: for a parent
	// whose split is not over, the count before the split.
	//
	// Split is set on a parent partition being split; SplitParent, on a child whose split
	// is not over, is its parent's index + 1 (the child's replica waits until the parent's
	// replica here has cut over, then opens the copy it built).
	Split       *SplitOrder `json:"split,omitempty"`
	SplitParent int32       `json:"split_parent,omitempty"`
}

// DupAssignment is one duplication of a partition's table, as the meta leader saved it.
type DupAssignment struct {
	ID        int32                   `json:"dupid"`
	Remote    string                  `json:"remote"`
	RemoteApp string                  `json:"remote_app_name"`
	Status    idl.DuplicationStatus   `json:"status"`
	FailMode  idl.DuplicationFailMode `json:"fail_mode"`
	// Confirmed is the last decree of the partition the follower applied, as the meta
	// saved it; Checkpoint the decree the follower's seed was prepared at. Both -1 when
	// none.
	Confirmed  int64 `json:"confirmed"`
	Checkpoint int64 `json:"checkpoint"`
	// CreateMS is when the duplication was added (unix milliseconds): without a seed, the
	// writes proposed from then on are shipped.
	CreateMS int64 `json:"create_ms"`
}

// SyncResponse is the meta leader's answer.
type SyncResponse struct {
	// Err is "ERR_OK", or "ERR_FORWARD_TO_OTHERS" from a meta that is not the leader (Leader
	// then names the leader if known).
	Err         string       `json:"err"`
	Leader      string       `json:"leader,omitempty"`
	Assignments []Assignment `json:"assignments"`
	// Envs are the envs of the tables of Assignments, by app id: once per table, so that a
	// sync's size grows with the partitions and the envs, not with their product.
	Envs map[int32]map[string]string `json:"table_envs,omitempty"`
	// DroppedApps are tables that were dropped and can still be recalled: their replicas stop
	// serving and keep their data.
	DroppedApps []int32 `json:"dropped_apps,omitempty"`
	// The long operations' tasks (ops.go).
	Backups   []BackupTask   `json:"backups,omitempty"`
	BulkLoads []BulkLoadTask `json:"bulk_loads,omitempty"`
	// Apps are the ids of every table the meta holds, of any status, and MaxAppID the highest
	// id it ever gave out: a replica of a table with an id up to MaxAppID that is not among
	// Apps belongs to a table dropped and expired (purged), whose data is to be deleted.
	Apps     []int32 `json:"apps,omitempty"`
	MaxAppID int32   `json:"max_app_id,omitempty"`
	// AssignmentsHash is the hash of this answer's placement part (PlacementHash); Unchanged
	// says that part is left out, being the one the request's KnownAssignments names.
	AssignmentsHash uint64 `json:"assignments_hash,omitempty"`
	Unchanged       bool   `json:"unchanged,omitempty"`
}

// Equal reports whether two assignments say the same, envs included.
func (a *Assignment) Equal(b *Assignment) bool {
	return a.AppID == b.AppID && a.PartitionIndex == b.PartitionIndex && a.AppName == b.AppName &&
		a.PartitionCount == b.PartitionCount && slices.Equal(a.Members, b.Members) &&
		maps.Equal(a.Envs, b.Envs) && a.Join == b.Join && slices.Equal(a.Dups, b.Dups) &&
		(a.Split == nil) == (b.Split == nil) && (a.Split == nil || *a.Split == *b.Split) &&
		a.SplitParent == b.SplitParent
}

// FillEnvs gives each assignment that has no envs of its own its table's envs, from Envs.
// The assignments of one table then share one map, which nobody may modify.
func (r *SyncResponse) FillEnvs() {
	for i := range r.Assignments {
		if a := &r.Assignments[i]; a.Envs == nil {
			a.Envs = r.Envs[a.AppID]
		}
	}
}

// Encode marshals a message into a blob.
func Encode(v any) *idl.Blob {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("cluster: marshal %T: %v", v, err)) // only plain structs are passed
	}
	blob := idl.Blob(b)
	return &blob
}

// Decode unmarshals a blob into v.
func Decode(b *idl.Blob, v any) error {
	if err := json.Unmarshal(*b, v); err != nil {
		return fmt.Errorf("cluster: decode %T: %w", v, err)
	}
	return nil
}
