package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metaclient"
)

// AddDuplicationOptions are the options of [Client.AddDuplication]; nil means the defaults.
type AddDuplicationOptions struct {
	// RemoteTable is the follower table's name (default: the table's own).
	RemoteTable string
	// RemoteReplicas is the follower table's replica count (default 0: the table's).
	RemoteReplicas int32
	// NoCheckpoint ships only new writes: the follower is not seeded with the table's data
	// and must exist already (is_duplicating_checkpoint=false; the shell's add_dup without
	// -s).
	NoCheckpoint bool
}

// DuplicationAdded describes a duplication [Client.AddDuplication] added or found.
type DuplicationAdded struct {
	AppID, DupID   int32
	RemoteTable    string
	RemoteReplicas int32
}

// Duplication describes one duplication of a table.
type Duplication struct {
	DupID          int32
	Status         string // "DS_PREPARE", "DS_APP", "DS_LOG", "DS_PAUSE", ...
	Remote         string // the follower cluster
	RemoteTable    string
	RemoteReplicas int32
	FailMode       string // "FAIL_SLOW", "FAIL_SKIP", ...
	CreateTime     time.Time
	// Partitions are the master partitions' progress, by index.
	Partitions []DuplicationProgress
}

// DuplicationProgress is one master partition's progress of a duplication.
type DuplicationProgress struct {
	Index int32
	// Confirmed is the last decree the follower applied (-1: none yet); LastCommitted the
	// last one committed on the master, as last reported (-1: unknown).
	Confirmed, LastCommitted int64
	// Lagging is set once the master's log dropped writes the follower never got (its
	// replica servers' dup_max_retained_log_entries was reached).
	Lagging bool
}

// MatchType says how [Client.ListDuplications] matches table names.
type MatchType int

// Match types.
const (
	MatchAll MatchType = iota
	MatchExact
	MatchAnywhere
	MatchPrefix
	MatchPostfix
)

func (m MatchType) wire() (idl.PatternMatchType, error) {
	switch m {
	case MatchAll:
		return idl.PatternMatchAll, nil
	case MatchExact:
		return idl.PatternMatchExact, nil
	case MatchAnywhere:
		return idl.PatternMatchAnywhere, nil
	case MatchPrefix:
		return idl.PatternMatchPrefix, nil
	case MatchPostfix:
		return idl.PatternMatchPostfix, nil
	}
	return 0, fmt.Errorf("%w: match type %d", ErrInvalidArgument, int(m))
}

// withHint appends a reply's hint to err.
func withHint(err error, hint idl.Optional[string]) error {
	if h, ok := hint.Get(); ok && h != "" {
		return fmt.Errorf("%w (%s)", err, h)
	}
	return err
}

func (c *client) AddDuplication(ctx context.Context, tableName, remoteCluster string, opts *AddDuplicationOptions) (*DuplicationAdded, error) {
	if tableName == "" || remoteCluster == "" {
		return nil, fmt.Errorf("%w: table %q, remote cluster %q", ErrInvalidArgument, tableName, remoteCluster)
	}
	if opts == nil {
		opts = &AddDuplicationOptions{}
	}
	req := idl.NewDuplicationAddRequest()
	req.AppName, req.RemoteClusterName = tableName, remoteCluster
	req.IsDuplicatingCheckpoint = !opts.NoCheckpoint
	if opts.RemoteTable != "" {
		req.RemoteAppName = idl.Some(opts.RemoteTable)
	}
	if opts.RemoteReplicas != 0 {
		req.RemoteReplicaCount = idl.Some(opts.RemoteReplicas)
	}
	resp, err := call(ctx, c, idl.RPCAddDuplication, &req,
		func(r *idl.DuplicationAddResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if resp == nil {
		return nil, fmt.Errorf("add duplication of %q to %s: %w", tableName, remoteCluster, err)
	}
	added := &DuplicationAdded{AppID: resp.AppID, DupID: resp.DupID,
		RemoteTable: resp.RemoteAppName.V, RemoteReplicas: resp.RemoteReplicaCount.V}
	if err != nil {
		err = fmt.Errorf("add duplication of %q to %s: %w", tableName, remoteCluster, withHint(err, resp.Hint))
		if resp.DupID == 0 {
			return nil, err
		}
	}
	return added, err
}

func duplicationOf(e *idl.DuplicationEntry) *Duplication {
	d := &Duplication{DupID: e.DupID, Status: e.Status.String(), Remote: e.Remote,
		RemoteTable: e.RemoteAppName.V, RemoteReplicas: e.RemoteReplicaCount.V,
		FailMode: e.FailMode.Or(idl.DupFailSlow).String(), CreateTime: time.UnixMilli(e.CreateTS)}
	for i, st := range e.PartitionStates.V {
		d.Partitions = append(d.Partitions, DuplicationProgress{Index: i, Confirmed: st.ConfirmedDecree,
			LastCommitted: st.LastCommittedDecree, Lagging: st.Lagging})
	}
	if !e.PartitionStates.Set {
		for i, c := range e.Progress.V {
			d.Partitions = append(d.Partitions, DuplicationProgress{Index: i, Confirmed: c, LastCommitted: -1})
		}
	}
	slices.SortFunc(d.Partitions, func(a, b DuplicationProgress) int { return int(a.Index - b.Index) })
	return d
}

func (c *client) QueryDuplications(ctx context.Context, tableName string) (int32, []*Duplication, error) {
	resp, err := call(ctx, c, idl.RPCQueryDuplication, &idl.DuplicationQueryRequest{AppName: tableName},
		func(r *idl.DuplicationQueryResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return 0, nil, fmt.Errorf("query duplications of %q: %w", tableName, err)
	}
	var out []*Duplication
	for i := range resp.EntryList {
		out = append(out, duplicationOf(&resp.EntryList[i]))
	}
	slices.SortFunc(out, func(a, b *Duplication) int { return int(a.DupID - b.DupID) })
	return resp.AppID, out, nil
}

func (c *client) ListDuplications(ctx context.Context, pattern string, match MatchType) (map[string][]*Duplication, error) {
	mt, err := match.wire()
	if err != nil {
		return nil, err
	}
	resp, err := call(ctx, c, idl.RPCListDuplication, &idl.DuplicationListRequest{AppNamePattern: pattern, MatchType: mt},
		func(r *idl.DuplicationListResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		if resp != nil && resp.HintMessage != "" {
			return nil, fmt.Errorf("list duplications: %w (%s)", err, resp.HintMessage)
		}
		return nil, fmt.Errorf("list duplications: %w", err)
	}
	out := make(map[string][]*Duplication, len(resp.AppStates))
	for name, st := range resp.AppStates {
		ds := []*Duplication{}
		for _, e := range st.Duplications {
			ds = append(ds, duplicationOf(&e))
		}
		slices.SortFunc(ds, func(a, b *Duplication) int { return int(a.DupID - b.DupID) })
		out[name] = ds
	}
	return out, nil
}

func (c *client) modifyDuplication(ctx context.Context, what string, req *idl.DuplicationModifyRequest) error {
	_, err := call(ctx, c, idl.RPCModifyDuplication, req,
		func(r *idl.DuplicationModifyResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return fmt.Errorf("%s duplication %d of %q: %w", what, req.DupID, req.AppName, err)
	}
	return nil
}

func (c *client) setStatus(ctx context.Context, what, tableName string, dupID int32, st idl.DuplicationStatus) error {
	return c.modifyDuplication(ctx, what, &idl.DuplicationModifyRequest{AppName: tableName, DupID: dupID, Status: idl.Some(st)})
}

func (c *client) StartDuplication(ctx context.Context, tableName string, dupID int32) error {
	return c.setStatus(ctx, "start", tableName, dupID, idl.DupStatusLog)
}

func (c *client) PauseDuplication(ctx context.Context, tableName string, dupID int32) error {
	return c.setStatus(ctx, "pause", tableName, dupID, idl.DupStatusPause)
}

func (c *client) RemoveDuplication(ctx context.Context, tableName string, dupID int32) error {
	return c.setStatus(ctx, "remove", tableName, dupID, idl.DupStatusRemoved)
}

func (c *client) SetDuplicationFailMode(ctx context.Context, tableName string, dupID int32, mode string) error {
	fm, err := dup.ParseFailMode(strings.TrimSpace(mode))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return c.modifyDuplication(ctx, "set the fail mode of", &idl.DuplicationModifyRequest{AppName: tableName, DupID: dupID, FailMode: idl.Some(fm)})
}
