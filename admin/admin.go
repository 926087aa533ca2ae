// Package admin is the administration client of a gopegasus (or Apache Pegasus) cluster:
// create, drop and list tables, list replica servers, read a table's partition configuration
// and the cluster's information, and manage table environment variables. It talks to the meta
// servers: to the leader, found from any one of them, and to the others when it fails,
// retrying within each call's deadline (internal/metaclient says how). The hot-key calls
// (hotkey.go) go to replica servers.
//
// Its shape mirrors the Apache go-client's admin package (NewClient(Config), CreateTable,
// DropTable, ListTables, ListNodes), with a context as every method's first argument. Errors
// wrap the Pegasus error codes, which errors.Is matches against the values re-exported by
// package pegasus (pegasus.ErrObjectNotFound, pegasus.ErrInvalidParameters, ...).
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/sasl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// DefaultTimeout bounds a call whose context has no deadline, unless Config.Timeout says
// otherwise.
const DefaultTimeout = 10 * time.Second

// ErrInvalidArgument is wrapped by errors of calls rejected before anything was sent.
var ErrInvalidArgument = errors.New("admin: invalid argument")

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("admin: client closed")

// Config is the configuration of an admin [Client]. Zero values mean the documented defaults.
type Config struct {
	// MetaServers lists the meta servers as "host:port".
	MetaServers []string `json:"meta_servers"`
	// Timeout bounds each call whose context has no deadline, and each attempt at the
	// presumed meta leader while other meta servers are known (a leader slow to commit a
	// change is thus not asked twice). Default [DefaultTimeout].
	Timeout time.Duration `json:"timeout"`
	// MaxRounds bounds how many times a call goes round the meta servers (the presumed
	// leader, the leader it names, then all the others at once) before it fails with the
	// last error. Default 0: calls retry until their context ends or Timeout passes.
	MaxRounds int `json:"max_rounds"`
	// Logger receives warnings about meta servers that fail. Default: discard.
	Logger *slog.Logger `json:"-"`
	// TLS, if set, makes the connections to the meta servers TLS, as pegasus.Config.TLS
	// does (pegasus.TLSConfig makes one from PEM files). Default nil: plaintext.
	TLS *tls.Config `json:"-"`
	// Kerberos, if set, authenticates the connections to the metas with Kerberos (SASL
	// GSSAPI, RPC_NEGOTIATION), for clusters with [security] enable_auth; with enable_acl,
	// creating and dropping tables needs a super user. New logs in to the KDC. Default:
	// anonymous connections.
	Kerberos *Kerberos `json:"-"`
}

// Kerberos is how the client authenticates with Kerberos (see pegasus.Kerberos).
type Kerberos = sasl.ClientConfig

// TableInfo describes a table.
type TableInfo struct {
	Name           string
	AppID          int32
	Status         string // "AS_AVAILABLE", "AS_DROPPED", ...
	PartitionCount int32
	ReplicaCount   int32 // max_replica_count
	Envs           map[string]string
	CreateTime     time.Time
	// DropTime and ExpireTime are set for a dropped table: when it was dropped, and when it
	// expires (until then it can be recalled, and its data is kept).
	DropTime, ExpireTime time.Time
}

// SplitStatus is a table's partition split in progress.
type SplitStatus struct {
	NewPartitionCount int32
	// Parents maps each parent partition whose child is not registered yet to its status:
	// "SPLITTING", "PAUSING", "PAUSED" or "CANCELING".
	Parents map[int32]string
}

// NodeInfo describes a replica server.
type NodeInfo struct {
	Address string // "ip:port"
	Status  string // "NS_ALIVE" or "NS_UNALIVE"
}

// InfoItem is one entry of the meta leader's cluster information.
type InfoItem struct {
	Key, Value string
}

// PartitionConfig is the replica placement of one partition.
type PartitionConfig struct {
	Index           int32
	Ballot          int64
	MaxReplicaCount int32
	Primary         string // "" when the partition has none
	Secondaries     []string
}

// TableConfig is a table's partition configuration.
type TableConfig struct {
	AppID          int32
	PartitionCount int32
	Partitions     []PartitionConfig // indexed by partition
}

// Client administers one cluster. It is safe for concurrent use.
type Client interface {
	// Close closes the client's connections. It is idempotent and returns nil.
	Close() error

	// CreateTable creates a table with partitionCount partitions of replicaCount replicas
	// each and table envs (nil means none), then waits, up to maxWaitSeconds (and the
	// context), until every partition has a primary and replicaCount-1 secondaries. A
	// gopegasus meta answers the create once every partition is led by the primary it
	// intends, so no leadership change follows: the table serves at once. It returns the
	// table's app id. By default creating a table that exists with the same options
	// succeeds; pass false as successIfExist to make it fail with ERR_APP_EXIST.
	CreateTable(ctx context.Context, tableName string, partitionCount int, replicaCount int,
		envs map[string]string, maxWaitSeconds int32, successIfExist ...bool) (int32, error)

	// DropTable drops a table; its data is kept for reserveSeconds (0 means the server's
	// default) during which it can be recalled. Dropping a missing table succeeds.
	DropTable(ctx context.Context, tableName string, reserveSeconds int64) error

	// ListTables lists the available tables.
	ListTables(ctx context.Context) ([]*TableInfo, error)

	// ListAllTables lists every table the meta holds: available ones, and dropped ones until
	// they expire (and any being recalled), in app id order.
	ListAllTables(ctx context.Context) ([]*TableInfo, error)

	// StartPartitionSplit doubles a table's partition count online (newPartitionCount must be
	// twice the current count, a power of two) and returns once the split has started
	// (RPC_CM_START_PARTITION_SPLIT); QueryPartitionSplit tells how it goes; WaitPartitionSplit
	// waits until it is over.
	StartPartitionSplit(ctx context.Context, tableName string, newPartitionCount int) error
	// QueryPartitionSplit returns a table's split in progress (RPC_CM_QUERY_PARTITION_SPLIT);
	// a table that is not splitting answers ERR_INVALID_STATE.
	QueryPartitionSplit(ctx context.Context, tableName string) (*SplitStatus, error)
	// PausePartitionSplit and RestartPartitionSplit pause and restart the split of one
	// parent partition, or of every one when parentIndex is -1; CancelPartitionSplit cancels
	// the whole split, whose partition count was oldPartitionCount before it
	// (RPC_CM_CONTROL_PARTITION_SPLIT). A parent whose child is registered can no longer be
	// paused or cancelled (ERR_CHILD_REGISTERED).
	PausePartitionSplit(ctx context.Context, tableName string, parentIndex int) error
	RestartPartitionSplit(ctx context.Context, tableName string, parentIndex int) error
	CancelPartitionSplit(ctx context.Context, tableName string, oldPartitionCount int) error
	// WaitPartitionSplit waits until the table is no longer splitting (its split finished or
	// was cancelled), calling progress (if not nil) with each new status.
	WaitPartitionSplit(ctx context.Context, tableName string, progress func(*SplitStatus)) error

	// RecallTable brings back a dropped table that has not expired, under its app id and
	// newName (its old name when empty), and returns it once every partition serves again
	// (RPC_CM_RECALL_APP). The meta answers ERR_APP_NOT_EXIST for an unknown or expired
	// table, ERR_APP_EXIST for an available one, ERR_INVALID_PARAMETERS when the name is
	// taken.
	RecallTable(ctx context.Context, appID int32, newName string) (*TableInfo, error)

	// ListNodes lists the alive replica servers.
	ListNodes(ctx context.Context) ([]*NodeInfo, error)

	// QueryConfig returns the partition configuration of a table.
	QueryConfig(ctx context.Context, tableName string) (*TableConfig, error)

	// ClusterInfo returns the meta leader's description of the cluster, in the order it gives
	// it: "meta_servers" (comma separated), "primary_meta_server", "zookeeper_hosts", ...
	// (RPC_CM_CLUSTER_INFO).
	ClusterInfo(ctx context.Context) ([]InfoItem, error)

	// GetAppEnvs returns the environment variables of a table.
	GetAppEnvs(ctx context.Context, tableName string) (map[string]string, error)
	// SetAppEnvs sets environment variables of a table.
	SetAppEnvs(ctx context.Context, tableName string, envs map[string]string) error
	// DelAppEnvs deletes environment variables of a table.
	DelAppEnvs(ctx context.Context, tableName string, keys []string) error
	// ClearAppEnvs deletes every environment variable of a table whose key is
	// "<prefix>.<something>", or all of them when prefix is empty.
	ClearAppEnvs(ctx context.Context, tableName string, prefix string) error

	// Operations: backups, restores and bulk loads (ops.go).
	Operations
	// Balancing: meta levels, manual moves and decommissions (balancer.go).
	Balancing
	// HotKeys: hot-key detection and the top-k of hash keys, asked of replica servers
	// (hotkey.go).
	HotKeys
	// AddDuplication duplicates a table to the remote cluster (named as in the meta servers'
	// [pegasus.clusters]) and returns the new duplication. When the table already has a
	// duplication to that cluster it returns that one with an error wrapping ERR_DUP_EXIST
	// (duplication.go).
	AddDuplication(ctx context.Context, tableName, remoteCluster string, opts *AddDuplicationOptions) (*DuplicationAdded, error)
	// QueryDuplications returns a table's app id and duplications, by dupid.
	QueryDuplications(ctx context.Context, tableName string) (int32, []*Duplication, error)
	// ListDuplications returns the duplications of every table whose name matches pattern
	// as match says (MatchAll ignores pattern), by table name.
	ListDuplications(ctx context.Context, pattern string, match MatchType) (map[string][]*Duplication, error)
	// StartDuplication ships a paused (or seeded) duplication's writes again (DS_LOG).
	StartDuplication(ctx context.Context, tableName string, dupID int32) error
	// PauseDuplication stops shipping a duplication's writes (DS_PAUSE); the master keeps
	// its log for it, up to the replica servers' bound.
	PauseDuplication(ctx context.Context, tableName string, dupID int32) error
	// RemoveDuplication stops and forgets a duplication (DS_REMOVED).
	RemoveDuplication(ctx context.Context, tableName string, dupID int32) error
	// SetDuplicationFailMode sets what a duplication's shippers do with a write the follower
	// refuses: "slow" (retry until it is taken, the default) or "skip".
	SetDuplicationFailMode(ctx context.Context, tableName string, dupID int32, mode string) error
}

// NewClient returns an admin client. It panics if an address is illegal; [New] returns that
// as an error instead. It does not connect.
func NewClient(cfg Config) Client {
	c, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return c
}

// New returns an admin client, or an error wrapping [ErrInvalidArgument] when an address is
// illegal. It does not connect.
func New(cfg Config) (Client, error) {
	if len(cfg.MetaServers) == 0 {
		return nil, fmt.Errorf("%w: no meta servers configured", ErrInvalidArgument)
	}
	for _, a := range cfg.MetaServers {
		host, port, err := net.SplitHostPort(a)
		p, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("%w: meta server address %q is not host:port", ErrInvalidArgument, a)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cc := rpc.ConnConfig{CallTimeout: cfg.Timeout, TLS: cfg.TLS}
	var krb *sasl.Client
	if cfg.Kerberos != nil {
		var err error
		if krb, err = sasl.NewClient(*cfg.Kerberos); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
		cc.Auth = krb
	}
	meta := metaclient.New(metaclient.Config{
		Addrs:          cfg.MetaServers,
		ConnConfig:     cc,
		AttemptTimeout: cfg.Timeout,
		MaxRounds:      cfg.MaxRounds,
		Logger:         cfg.Logger,
	})
	return &client{cfg: cfg, meta: meta, krb: krb}, nil
}

type client struct {
	cfg  Config
	meta *metaclient.Client // owns one connection per meta server
	krb  *sasl.Client       // authenticates the connections, or nil
}

func (c *client) Close() error {
	err := c.meta.Close()
	if c.krb != nil {
		c.krb.Close()
	}
	return err
}

func (c *client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// call sends one meta RPC to the meta leader as [metaclient.Call] does, within ctx's deadline
// or the configured timeout. A reply whose error is final is returned with the error.
func call[R any, P metaclient.Reply[R]](ctx context.Context, c *client, name string, args idl.Value,
	status func(P) metaclient.Status) (P, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	reply, err := metaclient.Call(ctx, c.meta, name, args, status)
	if errors.Is(err, rpc.ErrClosed) {
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return reply, err
}

func (c *client) CreateTable(ctx context.Context, tableName string, partitionCount int, replicaCount int,
	envs map[string]string, maxWaitSeconds int32, successIfExist ...bool) (int32, error) {
	if tableName == "" || partitionCount <= 0 || replicaCount <= 0 {
		return 0, fmt.Errorf("%w: table %q with %d partitions of %d replicas", ErrInvalidArgument, tableName, partitionCount, replicaCount)
	}
	if envs == nil {
		envs = map[string]string{}
	}
	sie := true
	if len(successIfExist) > 0 {
		sie = successIfExist[0]
	}
	req := &idl.CreateAppRequest{AppName: tableName, Options: idl.CreateAppOptions{
		PartitionCount: int32(partitionCount),
		ReplicaCount:   int32(replicaCount),
		SuccessIfExist: sie,
		AppType:        "pegasus",
		IsStateful:     true,
		Envs:           envs,
	}}
	resp, err := call(ctx, c, idl.RPCCreateApp, req, func(r *idl.CreateAppResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return 0, fmt.Errorf("create table %q: %w", tableName, err)
	}
	if err := c.waitReady(ctx, tableName, replicaCount, time.Duration(maxWaitSeconds)*time.Second); err != nil {
		return resp.AppID, fmt.Errorf("create table %q: %w", tableName, err)
	}
	return resp.AppID, nil
}

// waitReady polls the table's configuration until every partition has a primary and
// replicas-1 secondaries.
func (c *client) waitReady(ctx context.Context, tableName string, replicas int, maxWait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	interval := 100 * time.Millisecond
	for {
		cfg, err := c.QueryConfig(ctx, tableName)
		if err == nil && allReady(cfg, replicas) {
			return nil
		}
		if errors.Is(err, ErrClosed) {
			return err
		}
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = errors.New("some partitions lack their primary or secondaries")
			}
			return fmt.Errorf("not ready after %v: %w", maxWait, err)
		}
		interval = min(2*interval, time.Second)
	}
}

func allReady(cfg *TableConfig, replicas int) bool {
	for _, p := range cfg.Partitions {
		if p.Primary == "" || len(p.Secondaries) != replicas-1 {
			return false
		}
	}
	return len(cfg.Partitions) > 0
}

func (c *client) DropTable(ctx context.Context, tableName string, reserveSeconds int64) error {
	req := &idl.DropAppRequest{AppName: tableName, Options: idl.DropAppOptions{
		SuccessIfNotExist: true,
		ReserveSeconds:    idl.Some(reserveSeconds),
	}}
	if _, err := call(ctx, c, idl.RPCDropApp, req, func(r *idl.DropAppResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) }); err != nil {
		return fmt.Errorf("drop table %q: %w", tableName, err)
	}
	return nil
}

func (c *client) listApps(ctx context.Context) ([]idl.AppInfo, error) {
	return c.listAppsStatus(ctx, idl.AppStatusAvailable)
}

func (c *client) listAppsStatus(ctx context.Context, status idl.AppStatus) ([]idl.AppInfo, error) {
	req := &idl.ListAppsRequest{Status: status}
	resp, err := call(ctx, c, idl.RPCListApps, req, func(r *idl.ListAppsResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return resp.Infos, nil
}

func (c *client) ListTables(ctx context.Context) ([]*TableInfo, error) {
	infos, err := c.listApps(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*TableInfo, 0, len(infos))
	for _, a := range infos {
		out = append(out, tableInfo(a))
	}
	return out, nil
}

func tableInfo(a idl.AppInfo) *TableInfo {
	t := &TableInfo{
		Name:           a.AppName,
		AppID:          a.AppID,
		Status:         a.Status.String(),
		PartitionCount: a.PartitionCount,
		ReplicaCount:   a.MaxReplicaCount,
		Envs:           a.Envs,
		CreateTime:     time.Unix(a.CreateSecond, 0),
	}
	if a.DropSecond > 0 {
		t.DropTime, t.ExpireTime = time.Unix(a.DropSecond, 0), time.Unix(a.ExpireSecond, 0)
	}
	return t
}

func (c *client) ListAllTables(ctx context.Context) ([]*TableInfo, error) {
	infos, err := c.listAppsStatus(ctx, idl.AppStatusInvalid)
	if err != nil {
		return nil, err
	}
	out := make([]*TableInfo, 0, len(infos))
	for _, a := range infos {
		out = append(out, tableInfo(a))
	}
	return out, nil
}

func (c *client) RecallTable(ctx context.Context, appID int32, newName string) (*TableInfo, error) {
	req := &idl.RecallAppRequest{AppID: appID, NewAppName: newName}
	resp, err := call(ctx, c, idl.RPCRecallApp, req, func(r *idl.RecallAppResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return nil, fmt.Errorf("recall table %d: %w", appID, err)
	}
	return tableInfo(resp.Info), nil
}

func (c *client) ListNodes(ctx context.Context) ([]*NodeInfo, error) {
	req := &idl.ListNodesRequest{Status: idl.NodeStatusAlive}
	resp, err := call(ctx, c, idl.RPCListNodes, req, func(r *idl.ListNodesResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make([]*NodeInfo, 0, len(resp.Infos))
	for _, n := range resp.Infos {
		out = append(out, &NodeInfo{Address: n.Node.String(), Status: n.Status.String()})
	}
	return out, nil
}

func (c *client) QueryConfig(ctx context.Context, tableName string) (*TableConfig, error) {
	req := &idl.QueryCfgRequest{AppName: tableName, PartitionIndices: []int32{}}
	resp, err := call(ctx, c, idl.RPCQueryConfig, req, metaclient.QueryConfigStatus)
	if err != nil {
		return nil, fmt.Errorf("query configuration of table %q: %w", tableName, err)
	}
	cfg := &TableConfig{AppID: resp.AppID, PartitionCount: resp.PartitionCount,
		Partitions: make([]PartitionConfig, resp.PartitionCount)}
	for _, p := range resp.Partitions {
		i := p.PID.PartitionIndex
		if i < 0 || i >= resp.PartitionCount {
			return nil, fmt.Errorf("query configuration of table %q: bad partition index %d", tableName, i)
		}
		pc := PartitionConfig{Index: i, Ballot: p.Ballot, MaxReplicaCount: p.MaxReplicaCount}
		if !p.Primary.IsZero() {
			pc.Primary = p.Primary.String()
		}
		for _, s := range p.Secondaries {
			pc.Secondaries = append(pc.Secondaries, s.String())
		}
		cfg.Partitions[i] = pc
	}
	return cfg, nil
}

func (c *client) ClusterInfo(ctx context.Context) ([]InfoItem, error) {
	resp, err := call(ctx, c, idl.RPCClusterInfo, &idl.ClusterInfoRequest{},
		func(r *idl.ClusterInfoResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return nil, fmt.Errorf("cluster info: %w", err)
	}
	items := make([]InfoItem, 0, len(resp.Keys))
	for i, k := range resp.Keys {
		if i < len(resp.Values) {
			items = append(items, InfoItem{Key: k, Value: resp.Values[i]})
		}
	}
	return items, nil
}

func (c *client) GetAppEnvs(ctx context.Context, tableName string) (map[string]string, error) {
	infos, err := c.listApps(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range infos {
		if a.AppName == tableName {
			if a.Envs == nil {
				return map[string]string{}, nil
			}
			return a.Envs, nil
		}
	}
	return nil, fmt.Errorf("table %q: %w", tableName, wire.ErrObjectNotFound)
}

func (c *client) updateEnvs(ctx context.Context, req *idl.UpdateAppEnvRequest) error {
	resp, err := call(ctx, c, idl.RPCUpdateAppEnv, req, func(r *idl.UpdateAppEnvResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		if resp != nil && resp.HintMessage != "" {
			return fmt.Errorf("%s envs of table %q: %w (%s)", req.Op, req.AppName, err, resp.HintMessage)
		}
		return fmt.Errorf("%s envs of table %q: %w", req.Op, req.AppName, err)
	}
	return nil
}

func (c *client) SetAppEnvs(ctx context.Context, tableName string, envs map[string]string) error {
	if len(envs) == 0 {
		return fmt.Errorf("%w: no envs to set", ErrInvalidArgument)
	}
	keys := make([]string, 0, len(envs))
	for k := range envs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = envs[k]
	}
	return c.updateEnvs(ctx, &idl.UpdateAppEnvRequest{AppName: tableName, Op: idl.AppEnvOpSet,
		Keys: idl.Some(keys), Values: idl.Some(values)})
}

func (c *client) DelAppEnvs(ctx context.Context, tableName string, keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no envs to delete", ErrInvalidArgument)
	}
	return c.updateEnvs(ctx, &idl.UpdateAppEnvRequest{AppName: tableName, Op: idl.AppEnvOpDel, Keys: idl.Some(keys)})
}

func (c *client) ClearAppEnvs(ctx context.Context, tableName string, prefix string) error {
	return c.updateEnvs(ctx, &idl.UpdateAppEnvRequest{AppName: tableName, Op: idl.AppEnvOpClear, ClearPrefix: idl.Some(prefix)})
}

// splitStatus is the status of a split start's reply: its ERR_BUSY (a split already runs)
// is final.
func splitStatus(r *idl.StartPartitionSplitResponse) metaclient.Status {
	st := hinted(metaclient.CodeStatus(r.Err), r.HintMsg)
	st.Final = errors.Is(st.Err, wire.ErrBusy)
	return st
}

// hinted adds a reply's hint to its error.
func hinted(st metaclient.Status, hint string) metaclient.Status {
	if st.Err != nil && hint != "" {
		st.Err = fmt.Errorf("%w (%s)", st.Err, hint)
	}
	return st
}

func (c *client) StartPartitionSplit(ctx context.Context, tableName string, newPartitionCount int) error {
	req := &idl.StartPartitionSplitRequest{AppName: tableName, NewPartitionCount: int32(newPartitionCount)}
	if _, err := call(ctx, c, idl.RPCStartSplit, req, splitStatus); err != nil {
		return fmt.Errorf("start the split of table %q: %w", tableName, err)
	}
	return nil
}

func (c *client) QueryPartitionSplit(ctx context.Context, tableName string) (*SplitStatus, error) {
	resp, err := call(ctx, c, idl.RPCQuerySplit, &idl.QuerySplitRequest{AppName: tableName},
		func(r *idl.QuerySplitResponse) metaclient.Status {
			return hinted(metaclient.CodeStatus(r.Err), r.HintMsg.V)
		})
	if err != nil {
		return nil, fmt.Errorf("query the split of table %q: %w", tableName, err)
	}
	st := &SplitStatus{NewPartitionCount: resp.NewPartitionCount, Parents: make(map[int32]string, len(resp.Status))}
	for i, v := range resp.Status {
		st.Parents[i] = idl.SplitStatus(v).String()
	}
	return st, nil
}

func (c *client) controlSplit(ctx context.Context, req *idl.ControlSplitRequest) error {
	if _, err := call(ctx, c, idl.RPCControlSplit, req,
		func(r *idl.ControlSplitResponse) metaclient.Status {
			return hinted(metaclient.CodeStatus(r.Err), r.HintMsg.V)
		}); err != nil {
		return fmt.Errorf("%s the split of table %q: %w", strings.ToLower(req.ControlType.String()), req.AppName, err)
	}
	return nil
}

func (c *client) PausePartitionSplit(ctx context.Context, tableName string, parentIndex int) error {
	return c.controlSplit(ctx, &idl.ControlSplitRequest{AppName: tableName, ControlType: idl.SplitControlPause, ParentPidx: int32(parentIndex)})
}

func (c *client) RestartPartitionSplit(ctx context.Context, tableName string, parentIndex int) error {
	return c.controlSplit(ctx, &idl.ControlSplitRequest{AppName: tableName, ControlType: idl.SplitControlRestart, ParentPidx: int32(parentIndex)})
}

func (c *client) CancelPartitionSplit(ctx context.Context, tableName string, oldPartitionCount int) error {
	return c.controlSplit(ctx, &idl.ControlSplitRequest{AppName: tableName, ControlType: idl.SplitControlCancel, ParentPidx: -1,
		OldPartitionCount: idl.Some(int32(oldPartitionCount))})
}

func (c *client) WaitPartitionSplit(ctx context.Context, tableName string, progress func(*SplitStatus)) error {
	var last string
	return poll(ctx, func() (bool, error) {
		st, err := c.QueryPartitionSplit(ctx, tableName)
		switch {
		case errors.Is(err, wire.ErrInvalidState):
			return true, nil // not splitting any more
		case err != nil:
			return false, err
		}
		if s := fmt.Sprint(st.Parents); progress != nil && s != last {
			last = s
			progress(st)
		}
		return false, nil
	})
}

// poll calls check every pollInterval until it reports done or fails, or ctx ends.
func poll(ctx context.Context, check func() (bool, error)) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		done, err := check()
		if done || err != nil {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pollInterval spaces the queries of the calls that wait for a long operation.
const pollInterval = 200 * time.Millisecond
