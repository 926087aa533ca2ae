package admin

import (
	"context"
	"fmt"
	"slices"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Balancing is the part of [Client] that runs the balancer and decommissions replica
// servers.
type Balancing interface {
	// GetMetaLevel returns the meta function level: "stopped", "blind", "freezed", "steady"
	// (nothing is balanced) or "lively" (the balancer runs) (RPC_CM_CONTROL_META).
	GetMetaLevel(ctx context.Context) (string, error)
	// SetMetaLevel sets the meta function level (with or without its "fl_" prefix) and
	// returns the level before.
	SetMetaLevel(ctx context.Context, level string) (string, error)
	// Balance proposes one manual move of a partition of a table (RPC_CM_PROPOSE_BALANCER),
	// as Pegasus's shell balance command: kind "move_pri" makes to the primary (from must be
	// the primary, to a secondary); "copy_sec" moves a secondary's replica from from to to;
	// "copy_pri" (the primary's replica from from to to, which becomes the primary) is sent
	// as Pegasus's shell sends it, and a gopegasus meta refuses it with ERR_INVALID_STATE:
	// move the primary first, then its replica as a secondary's. It returns once the move is
	// decided; the data moves afterwards.
	Balance(ctx context.Context, tableName string, partitionIndex int, kind, from, to string) error

	// Decommission marks replica servers as leaving: the meta moves every replica off them
	// while they still serve, and places nothing new there. It returns their progress.
	Decommission(ctx context.Context, nodes ...string) ([]*DecommissionProgress, error)
	// CancelDecommission marks replica servers as staying again (what was moved off stays
	// where it went; in lively mode the balancer evens the load out again).
	CancelDecommission(ctx context.Context, nodes ...string) error
	// DecommissionStatus returns the progress of every leaving server.
	DecommissionStatus(ctx context.Context) ([]*DecommissionProgress, error)
	// WaitDecommission waits until every server of nodes is empty, calling progress (if not
	// nil) with each new status.
	WaitDecommission(ctx context.Context, progress func([]*DecommissionProgress), nodes ...string) error
}

// DecommissionProgress is how far the decommission of one replica server is.
type DecommissionProgress struct {
	Node  string
	Alive bool
	// Replicas is how many partitions the placement still puts on the server; Voter how many
	// raft groups still count it as a member; Primaries how many it leads.
	Replicas, Voter, Primaries int
	// Empty is set once all three are zero: the server can be stopped.
	Empty bool
}

func (c *client) controlMeta(ctx context.Context, l idl.MetaFunctionLevel) (idl.MetaFunctionLevel, error) {
	resp, err := call(ctx, c, idl.RPCControlMeta, &idl.MetaControlRequest{Level: int32(l)},
		func(r *idl.MetaControlResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return 0, err
	}
	return idl.MetaFunctionLevel(resp.OldLevel), nil
}

func levelText(l idl.MetaFunctionLevel) string {
	s := l.String()
	if len(s) > 3 && s[:3] == "fl_" {
		return s[3:]
	}
	return s
}

func (c *client) GetMetaLevel(ctx context.Context) (string, error) {
	l, err := c.controlMeta(ctx, idl.MetaLevelInvalid)
	if err != nil {
		return "", fmt.Errorf("get meta level: %w", err)
	}
	return levelText(l), nil
}

func (c *client) SetMetaLevel(ctx context.Context, level string) (string, error) {
	l, ok := idl.ParseMetaFunctionLevel(level)
	if !ok {
		return "", fmt.Errorf("%w: %q is not a meta level (stopped, blind, freezed, steady, lively)", ErrInvalidArgument, level)
	}
	old, err := c.controlMeta(ctx, l)
	if err != nil {
		return "", fmt.Errorf("set meta level %s: %w", level, err)
	}
	return levelText(old), nil
}

func (c *client) Balance(ctx context.Context, tableName string, partitionIndex int, kind, from, to string) error {
	fail := func(err error) error {
		return fmt.Errorf("balance %s of partition %d of table %q from %s to %s: %w", kind, partitionIndex, tableName, from, to, err)
	}
	fromAddr, err1 := idl.ParseRPCAddress(from)
	toAddr, err2 := idl.ParseRPCAddress(to)
	if err1 != nil || err2 != nil {
		return fail(fmt.Errorf("%w: from and to must be ip:port", ErrInvalidArgument))
	}
	cfg, err := c.QueryConfig(ctx, tableName)
	if err != nil {
		return fail(err)
	}
	if partitionIndex < 0 || partitionIndex >= len(cfg.Partitions) {
		return fail(fmt.Errorf("%w: the table has %d partitions", ErrInvalidArgument, len(cfg.Partitions)))
	}
	pc := cfg.Partitions[partitionIndex]
	act := func(target, node idl.RPCAddress, t idl.ConfigType) idl.ProposalAction {
		return idl.ProposalAction{Target: target, Node: node, Type: t}
	}
	req := &idl.BalancerRequest{GPID: idl.GPID{AppID: cfg.AppID, PartitionIndex: int32(partitionIndex)}}
	switch kind {
	case "move_pri":
		if pc.Primary != from || !slices.Contains(pc.Secondaries, to) {
			return fail(fmt.Errorf("%w: from must be the primary (%s) and to a secondary %v", ErrInvalidArgument, pc.Primary, pc.Secondaries))
		}
		req.BalanceType = idl.Some(idl.BalanceMovePrimary)
		req.ActionList = []idl.ProposalAction{act(fromAddr, fromAddr, idl.ConfigDowngradeToSecondary), act(toAddr, toAddr, idl.ConfigUpgradeToPrimary)}
	case "copy_pri":
		if pc.Primary != from {
			return fail(fmt.Errorf("%w: from must be the primary (%s)", ErrInvalidArgument, pc.Primary))
		}
		req.BalanceType = idl.Some(idl.BalanceCopyPrimary)
		req.ActionList = []idl.ProposalAction{act(fromAddr, toAddr, idl.ConfigAddSecondaryForLB),
			act(fromAddr, fromAddr, idl.ConfigDowngradeToSecondary), act(toAddr, toAddr, idl.ConfigUpgradeToPrimary),
			act(toAddr, fromAddr, idl.ConfigRemove)}
	case "copy_sec":
		if !slices.Contains(pc.Secondaries, from) {
			return fail(fmt.Errorf("%w: from must be a secondary %v", ErrInvalidArgument, pc.Secondaries))
		}
		primary, err := idl.ParseRPCAddress(pc.Primary)
		if err != nil {
			return fail(fmt.Errorf("the partition has no primary: %w", wire.ErrInvalidState))
		}
		req.BalanceType = idl.Some(idl.BalanceCopySecondary)
		req.ActionList = []idl.ProposalAction{act(primary, toAddr, idl.ConfigAddSecondaryForLB), act(primary, fromAddr, idl.ConfigRemove)}
	default:
		return fail(fmt.Errorf("%w: kind must be move_pri, copy_pri or copy_sec", ErrInvalidArgument))
	}
	if _, err := call(ctx, c, idl.RPCProposeBalance, req,
		func(r *idl.BalancerResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) }); err != nil {
		return fail(err)
	}
	return nil
}

// decommissionReply is a meta's answer to a decommission request: a blob holding a JSON
// [cluster.DecommissionResponse].
type decommissionReply struct {
	resp cluster.DecommissionResponse
	err  error
}

func (*decommissionReply) ThriftType() idl.Type { return idl.TypeStruct }

func (r *decommissionReply) Encode(e *idl.Encoder) { cluster.Encode(&r.resp).Encode(e) }

func (r *decommissionReply) Decode(d *idl.Decoder) {
	var b idl.Blob
	if b.Decode(d); d.Err() == nil {
		r.err = cluster.Decode(&b, &r.resp)
	}
}

func (c *client) decommission(ctx context.Context, op string, nodes []string) ([]*DecommissionProgress, error) {
	for _, n := range nodes {
		if _, err := idl.ParseRPCAddress(n); err != nil {
			return nil, fmt.Errorf("%w: %q is not ip:port", ErrInvalidArgument, n)
		}
	}
	req := cluster.Encode(&cluster.DecommissionRequest{Op: op, Nodes: nodes})
	reply, err := call(ctx, c, cluster.RPCDecommission, req, func(r *decommissionReply) metaclient.Status {
		if r.err != nil {
			return metaclient.Status{Err: r.err}
		}
		return hinted(metaclient.Status{Err: wire.CodeError(r.resp.Err), Leader: r.resp.Leader}, r.resp.Hint)
	})
	if err != nil {
		return nil, err
	}
	out := make([]*DecommissionProgress, 0, len(reply.resp.Nodes))
	for _, n := range reply.resp.Nodes {
		out = append(out, &DecommissionProgress{Node: n.Node, Alive: n.Alive, Replicas: n.Replicas, Voter: n.Voter,
			Primaries: n.Primaries, Empty: n.Empty})
	}
	return out, nil
}

func (c *client) Decommission(ctx context.Context, nodes ...string) ([]*DecommissionProgress, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("decommission: %w: no servers given", ErrInvalidArgument)
	}
	p, err := c.decommission(ctx, cluster.DecommissionStart, nodes)
	if err != nil {
		return nil, fmt.Errorf("decommission %v: %w", nodes, err)
	}
	return p, nil
}

func (c *client) CancelDecommission(ctx context.Context, nodes ...string) error {
	if _, err := c.decommission(ctx, cluster.DecommissionCancel, nodes); err != nil {
		return fmt.Errorf("cancel the decommission of %v: %w", nodes, err)
	}
	return nil
}

func (c *client) DecommissionStatus(ctx context.Context) ([]*DecommissionProgress, error) {
	p, err := c.decommission(ctx, cluster.DecommissionStatus, nil)
	if err != nil {
		return nil, fmt.Errorf("decommission status: %w", err)
	}
	return p, nil
}

func (c *client) WaitDecommission(ctx context.Context, progress func([]*DecommissionProgress), nodes ...string) error {
	var last string
	return poll(ctx, func() (bool, error) {
		st, err := c.DecommissionStatus(ctx)
		if err != nil {
			return false, err
		}
		var mine []*DecommissionProgress
		done := true
		for _, n := range nodes {
			i := slices.IndexFunc(st, func(p *DecommissionProgress) bool { return p.Node == n })
			if i < 0 {
				return false, fmt.Errorf("wait for the decommission of %s: %w: it is not leaving", n, ErrInvalidArgument)
			}
			mine = append(mine, st[i])
			done = done && st[i].Empty
		}
		if s := fmt.Sprint(derefAll(mine)); progress != nil && s != last {
			last = s
			progress(mine)
		}
		return done, nil
	})
}

func derefAll(ps []*DecommissionProgress) []DecommissionProgress {
	out := make([]DecommissionProgress, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}
