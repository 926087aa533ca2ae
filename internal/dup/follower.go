package dup

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The envs the master's meta gives the follower table it creates (operations.md §1), on top
// of the master table's own.
const (
	EnvMasterCluster  = "duplication.master_cluster"
	EnvMasterMetas    = "duplication.master_metas"
	EnvMasterApp      = "duplication.master_app_name"
	EnvFollowerStatus = "duplication.follower_app_status"
	// FollowerCreating is the follower status while the follower is being seeded;
	// FollowerCreated once it holds the seed.
	FollowerCreating = "creating"
	FollowerCreated  = "created"
)

// FollowerTable describes the follower table of a duplication, as the master's meta creates
// it on the follower cluster.
type FollowerTable struct {
	Name           string
	PartitionCount int32
	ReplicaCount   int32
	// Envs are the master table's envs.
	Envs map[string]string
	// Master is the master cluster's name, MasterMetas its meta servers, MasterApp the master
	// table's name.
	Master      string
	MasterMetas []string
	MasterApp   string
}

// CreateRequest is the RPC_CM_CREATE_APP of the follower table with follower status status
// ([FollowerCreating] or [FollowerCreated]).
func (f FollowerTable) CreateRequest(status string) *idl.CreateAppRequest {
	envs := maps.Clone(f.Envs)
	if envs == nil {
		envs = map[string]string{}
	}
	envs[EnvMasterCluster] = f.Master
	envs[EnvMasterMetas] = strings.Join(f.MasterMetas, ",")
	envs[EnvMasterApp] = f.MasterApp
	envs[EnvFollowerStatus] = status
	return &idl.CreateAppRequest{AppName: f.Name, Options: idl.CreateAppOptions{
		PartitionCount: f.PartitionCount, ReplicaCount: f.ReplicaCount, AppType: "pegasus",
		IsStateful: true, Envs: envs,
	}}
}

// RepeatedCreate decides, on the follower's meta, a create of a duplication's follower table
// (its envs carry [EnvFollowerStatus]) when a table of that name exists: the master's meta
// sends the same create again until it hears back, and once more to mark the follower
// created. The create is answered OK when the existing table is the follower of the same
// master table; set is the status env to record then ("" for none). A table that is not
// that follower makes it ERR_APP_EXIST.
func RepeatedCreate(existing map[string]string, partitions int32, req *idl.CreateAppRequest) (code wire.Code, set string) {
	want := req.Options.Envs
	have, isFollower := existing[EnvFollowerStatus]
	if !isFollower || existing[EnvMasterCluster] != want[EnvMasterCluster] ||
		existing[EnvMasterApp] != want[EnvMasterApp] || partitions != req.Options.PartitionCount {
		return wire.ErrAppExist, ""
	}
	if have == FollowerCreating && want[EnvFollowerStatus] == FollowerCreated {
		return wire.OK, FollowerCreated
	}
	return wire.OK, ""
}

// IsFollowerCreate reports whether a create request is a duplication's follower table's.
func IsFollowerCreate(req *idl.CreateAppRequest) bool {
	_, ok := req.Options.Envs[EnvFollowerStatus]
	return ok
}

// CreateFollower sends the follower table's create with status to the follower cluster's
// metas and returns nil once it is answered ERR_OK.
func CreateFollower(ctx context.Context, mc *metaclient.Client, f FollowerTable, status string) error {
	_, err := metaclient.Call(ctx, mc, idl.RPCCreateApp, f.CreateRequest(status),
		func(r *idl.CreateAppResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return fmt.Errorf("dup: create follower table %q (%s): %w", f.Name, status, err)
	}
	return nil
}

// FollowerReady reports whether every partition of the follower table has a primary, and a
// secondary too when it has more than one replica.
func FollowerReady(ctx context.Context, mc *metaclient.Client, app string) (bool, error) {
	resp, err := mc.QueryConfig(ctx, app)
	if err != nil {
		return false, fmt.Errorf("dup: configuration of follower table %q: %w", app, err)
	}
	if len(resp.Partitions) != int(resp.PartitionCount) || resp.PartitionCount == 0 {
		return false, nil
	}
	for _, pc := range resp.Partitions {
		if pc.Primary.IsZero() || (pc.MaxReplicaCount > 1 && len(pc.Secondaries) == 0) {
			return false, nil
		}
	}
	return true, nil
}
