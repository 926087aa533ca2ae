// Package admin is the administration client of a gopegasus (or Apache Pegasus) cluster:
// create, drop and list tables, list replica servers, read a table's partition configuration
// and manage table environment variables. It talks to the meta servers only.
//
// Its shape mirrors the Apache go-client's admin package (NewClient(Config), CreateTable,
// DropTable, ListTables, ListNodes), with a context as every method's first argument. Errors
// wrap the Pegasus error codes, which errors.Is matches against the values re-exported by
// package pegasus (pegasus.ErrObjectNotFound, pegasus.ErrInvalidParameters, ...).
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
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
	// Timeout bounds each call whose context has no deadline. Default [DefaultTimeout].
	Timeout time.Duration `json:"timeout"`
	// Logger receives warnings about meta servers that fail. Default: discard.
	Logger *slog.Logger `json:"-"`
}

// TableInfo describes a table.
type TableInfo struct {
	Name           string
	AppID          int32
	Status         string // "AS_AVAILABLE", "AS_DROPPED", ...
	PartitionCount int32
	ReplicaCount   int32 // max_replica_count
	Envs           map[string]string
	CreateTime     time.Time
}

// NodeInfo describes a replica server.
type NodeInfo struct {
	Address string // "ip:port"
	Status  string // "NS_ALIVE" or "NS_UNALIVE"
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
	// context), until every partition has a primary. It returns the table's app id. By
	// default creating a table that exists with the same options succeeds; pass false as
	// successIfExist to make it fail with ERR_APP_EXIST.
	CreateTable(ctx context.Context, tableName string, partitionCount int, replicaCount int,
		envs map[string]string, maxWaitSeconds int32, successIfExist ...bool) (int32, error)

	// DropTable drops a table; its data is kept for reserveSeconds (0 means the server's
	// default) during which it can be recalled. Dropping a missing table succeeds.
	DropTable(ctx context.Context, tableName string, reserveSeconds int64) error

	// ListTables lists the available tables.
	ListTables(ctx context.Context) ([]*TableInfo, error)

	// ListNodes lists the alive replica servers.
	ListNodes(ctx context.Context) ([]*NodeInfo, error)

	// QueryConfig returns the partition configuration of a table.
	QueryConfig(ctx context.Context, tableName string) (*TableConfig, error)

	// GetAppEnvs returns the environment variables of a table.
	GetAppEnvs(ctx context.Context, tableName string) (map[string]string, error)
	// SetAppEnvs sets environment variables of a table.
	SetAppEnvs(ctx context.Context, tableName string, envs map[string]string) error
	// DelAppEnvs deletes environment variables of a table.
	DelAppEnvs(ctx context.Context, tableName string, keys []string) error
	// ClearAppEnvs deletes every environment variable of a table whose key is
	// "<prefix>.<something>", or all of them when prefix is empty.
	ClearAppEnvs(ctx context.Context, tableName string, prefix string) error
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
	c := &client{cfg: cfg, done: make(chan struct{})}
	c.mu.addrs = slices.Clone(cfg.MetaServers)
	c.pool = rpc.NewPool(rpc.ConnConfig{CallTimeout: cfg.Timeout})
	return c, nil
}

type client struct {
	cfg  Config
	done chan struct{}
	pool *rpc.Pool // one connection per meta server

	mu struct {
		sync.Mutex
		closed bool
		addrs  []string
		leader int
	}
}

func (c *client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	close(c.done)
	c.mu.Unlock()
	return c.pool.Close()
}

func (c *client) conn(addr string) (*rpc.Conn, error) {
	cn, err := c.pool.Get(addr)
	if err != nil {
		return nil, ErrClosed
	}
	return cn, nil
}

func (c *client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// metaReply is a meta reply struct with an err field.
type metaReply[R any] interface {
	*R
	idl.Value
}

// call sends one meta RPC to the leader, moving on to the other meta servers when one cannot
// be reached or is not the leader, until ctx ends. errOf extracts the reply's err field;
// hint, if not nil, the leader address a forwarding meta server names.
func call[R any, P metaReply[R]](ctx context.Context, c *client, name string, args idl.Value,
	errOf func(P) idl.ErrorCode, hint func(P) string) (P, error) {
	backoff := 50 * time.Millisecond
	var lastErr error
	for {
		c.mu.Lock()
		addrs := slices.Clone(c.mu.addrs)
		first := c.mu.leader
		c.mu.Unlock()
		for i := range addrs {
			addr := addrs[(first+i)%len(addrs)]
			reply, err := callOne(ctx, c, addr, name, args, errOf)
			if err == nil {
				c.setLeader(addr)
				return reply, nil
			}
			if !retryable(err) || ctx.Err() != nil {
				return reply, err
			}
			lastErr = err
			if hint != nil && reply != nil {
				if h := hint(reply); h != "" && h != addr {
					if reply, err := callOne(ctx, c, h, name, args, errOf); err == nil {
						c.setLeader(h)
						return reply, nil
					} else if !retryable(err) {
						return nil, err
					}
				}
			}
			c.cfg.Logger.Warn("meta server failed, trying the next", "addr", addr, "rpc", name, "err", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: %w (last error: %w)", name, ctx.Err(), lastErr)
		case <-c.done:
			t.Stop()
			return nil, ErrClosed
		}
		backoff = min(2*backoff, time.Second)
	}
}

func callOne[R any, P metaReply[R]](ctx context.Context, c *client, addr, name string, args idl.Value, errOf func(P) idl.ErrorCode) (P, error) {
	cn, err := c.conn(addr)
	if err != nil {
		return nil, err
	}
	reply := P(new(R))
	if err := cn.Call(ctx, wire.Header{}, name, args, reply); err != nil {
		if errors.Is(err, rpc.ErrClosed) {
			return nil, fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return nil, err
	}
	if err := wire.CodeError(string(errOf(reply))); err != nil {
		return reply, fmt.Errorf("meta %s: %w", addr, err)
	}
	return reply, nil
}

// retryable reports whether another meta server (or a later attempt) may answer.
func retryable(err error) bool {
	if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	code, ok := wire.AsCode(err)
	if !ok {
		return true // transport failure
	}
	switch code {
	case wire.ErrForwardToOthers, wire.ErrServiceNotActive, wire.ErrUnderRecovery, wire.ErrTimeout, wire.ErrBusy:
		return true
	}
	return false
}

func (c *client) setLeader(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.mu.addrs, addr)
	if i < 0 {
		c.mu.addrs = append(c.mu.addrs, addr)
		i = len(c.mu.addrs) - 1
	}
	c.mu.leader = i
}

func cfgErr(r *idl.QueryCfgResponse) idl.ErrorCode { return r.Err }

func cfgHint(r *idl.QueryCfgResponse) string {
	if r.Err == "ERR_FORWARD_TO_OTHERS" && len(r.Partitions) > 0 && !r.Partitions[0].Primary.IsZero() {
		return r.Partitions[0].Primary.String()
	}
	return ""
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
	cctx, cancel := c.withTimeout(ctx)
	resp, err := call(cctx, c, idl.RPCCreateApp, req, func(r *idl.CreateAppResponse) idl.ErrorCode { return r.Err }, nil)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("create table %q: %w", tableName, err)
	}
	if err := c.waitPrimaries(ctx, tableName, time.Duration(maxWaitSeconds)*time.Second); err != nil {
		return resp.AppID, fmt.Errorf("create table %q: %w", tableName, err)
	}
	return resp.AppID, nil
}

// waitPrimaries polls the table's configuration until every partition has a primary.
func (c *client) waitPrimaries(ctx context.Context, tableName string, maxWait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	interval := 100 * time.Millisecond
	for {
		cfg, err := c.QueryConfig(ctx, tableName)
		if err == nil && allPrimaries(cfg) {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = errors.New("some partitions have no primary")
			}
			return fmt.Errorf("not ready after %v: %w", maxWait, err)
		}
		interval = min(2*interval, time.Second)
	}
}

func allPrimaries(cfg *TableConfig) bool {
	for _, p := range cfg.Partitions {
		if p.Primary == "" {
			return false
		}
	}
	return len(cfg.Partitions) > 0
}

func (c *client) DropTable(ctx context.Context, tableName string, reserveSeconds int64) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req := &idl.DropAppRequest{AppName: tableName, Options: idl.DropAppOptions{
		SuccessIfNotExist: true,
		ReserveSeconds:    idl.Some(reserveSeconds),
	}}
	if _, err := call(ctx, c, idl.RPCDropApp, req, func(r *idl.DropAppResponse) idl.ErrorCode { return r.Err }, nil); err != nil {
		return fmt.Errorf("drop table %q: %w", tableName, err)
	}
	return nil
}

func (c *client) listApps(ctx context.Context) ([]idl.AppInfo, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req := &idl.ListAppsRequest{Status: idl.AppStatusAvailable}
	resp, err := call(ctx, c, idl.RPCListApps, req, func(r *idl.ListAppsResponse) idl.ErrorCode { return r.Err }, nil)
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
		out = append(out, &TableInfo{
			Name:           a.AppName,
			AppID:          a.AppID,
			Status:         a.Status.String(),
			PartitionCount: a.PartitionCount,
			ReplicaCount:   a.MaxReplicaCount,
			Envs:           a.Envs,
			CreateTime:     time.Unix(a.CreateSecond, 0),
		})
	}
	return out, nil
}

func (c *client) ListNodes(ctx context.Context) ([]*NodeInfo, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req := &idl.ListNodesRequest{Status: idl.NodeStatusAlive}
	resp, err := call(ctx, c, idl.RPCListNodes, req, func(r *idl.ListNodesResponse) idl.ErrorCode { return r.Err }, nil)
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
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req := &idl.QueryCfgRequest{AppName: tableName, PartitionIndices: []int32{}}
	resp, err := call(ctx, c, idl.RPCQueryConfig, req, cfgErr, cfgHint)
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
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := call(ctx, c, idl.RPCUpdateAppEnv, req, func(r *idl.UpdateAppEnvResponse) idl.ErrorCode { return r.Err }, nil)
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
