package meta

import (
	"context"
	"errors"
	"fmt"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Recall of dropped tables (operations.md §5). A drop keeps the table in the map as
// AS_DROPPED until its expiry (drop time + reserve_seconds, or the meta's
// hold_seconds_for_dropped_app); the replica servers stop serving its partitions and keep
// their data (package replica). RPC_CM_RECALL_APP makes it AS_RECALLING under the same app
// id and placement (and a new name if asked): its partitions are assigned again, their
// replicas reopen the data they kept, and once every partition has a primary the leader
// commits AS_AVAILABLE and answers. The recalling state is in the replicated map, so a new
// meta leader finishes a recall its predecessor began. Once a dropped table expires it is
// purged from the map, and the replica servers delete its data at their next sync.

// recallTable is the mutation that starts a recall.
type recallTable struct {
	AppID int32  `json:"app_id"`
	Name  string `json:"name"` // the table's name once recalled
	Now   int64  `json:"now"`
}

// recall applies a recallTable: the checks of operations.md §5 against the map, then the
// table becomes AS_RECALLING under its new name.
func (m *clusterMap) recall(r *recallTable) result {
	t := m.tableByID(r.AppID)
	if code := recallRefusal(m, t, r.Name, r.Now); code != wire.OK {
		return result{Code: code}
	}
	t.Status = idl.AppStatusRecalling
	t.Name = r.Name
	t.DropSecond, t.ExpireSecond = 0, 0
	return result{Code: wire.OK, AppID: t.AppID}
}

// recallRefusal is why table t cannot be recalled under name at unix second now: unknown
// or expired, being created or recalled, being dropped, available, or the name is taken.
func recallRefusal(m *clusterMap, t *table, name string, now int64) wire.Code {
	switch {
	case t == nil:
		return wire.ErrAppNotExist
	case t.Status == idl.AppStatusCreating || t.Status == idl.AppStatusRecalling:
		return wire.ErrBusyCreating
	case t.Status == idl.AppStatusDropping:
		return wire.ErrBusyDropping
	case t.Status == idl.AppStatusAvailable:
		return wire.ErrAppExist
	case t.Status != idl.AppStatusDropped || t.ExpireSecond <= now:
		return wire.ErrAppNotExist
	case m.namedTable(name) != nil:
		return wire.ErrInvalidParameters
	}
	return wire.OK
}

// startRecall checks a recall request and commits its start. It returns the reply to send
// at once (an error), or nil when the table is now recalling: the caller then waits for it.
func (m *machine) startRecall(ctx context.Context, q *idl.RecallAppRequest) *idl.RecallAppResponse {
	fail := func(c wire.Code) *idl.RecallAppResponse {
		return &idl.RecallAppResponse{Err: errCode(c), Info: idl.NewAppInfo()}
	}
	t := m.state.tableByID(q.AppID)
	name := q.NewAppName
	if name == "" && t != nil {
		name = t.Name
	}
	op := &recallTable{AppID: q.AppID, Name: name, Now: m.cfg.Now().Unix()}
	if code := recallRefusal(m.state, t, name, op.Now); code != wire.OK {
		return fail(code)
	}
	res, err := m.commit(ctx, &mutation{RecallTable: op})
	if err != nil {
		return fail(commitErrCode(err))
	}
	if res.Code != wire.OK {
		return fail(res.Code)
	}
	m.lg.Info("table recall started", "table", name, "app_id", q.AppID)
	return nil
}

// recallDone returns the reply to a recall of table id once it is over: nil while the
// table is still recalling.
func (m *machine) recallDone(id int32) *idl.RecallAppResponse {
	t := m.state.tableByID(id)
	switch {
	case t == nil:
		// Purged meanwhile (it cannot expire while recalling, but a new leader may lag).
		return &idl.RecallAppResponse{Err: errCode(wire.ErrAppNotExist), Info: idl.NewAppInfo()}
	case t.Status == idl.AppStatusRecalling:
		return nil
	case t.Status == idl.AppStatusAvailable:
		return &idl.RecallAppResponse{Err: errCode(wire.OK), Info: t.appInfo()}
	}
	// Dropped again while it was recalling.
	return &idl.RecallAppResponse{Err: errCode(wire.ErrAppNotExist), Info: idl.NewAppInfo()}
}

// finishRecalls makes every recalling table whose partitions all have a primary available.
func (m *machine) finishRecalls(ctx context.Context) {
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusRecalling || !m.allPrimaries(t) {
			continue
		}
		id := t.AppID
		if _, err := m.commit(ctx, &mutation{FinishRecall: &id}); err != nil {
			m.lg.Warn("finishing a recall failed; will retry", "table", t.Name, "err", err)
			return
		}
		m.lg.Info("table recalled", "table", t.Name, "app_id", id)
	}
}

// allPrimaries reports whether every partition of t has a primary.
func (m *machine) allPrimaries(t *table) bool {
	for i := range t.Partitions {
		if _, ok := m.primaryOf(t, int32(i)); !ok {
			return false
		}
	}
	return true
}

// recallApp serves RPC_CM_RECALL_APP: it starts the recall on the state goroutine, then
// waits, outside it, until the table is available again (or ctx ends: the recall goes on,
// and the client sees ERR_TIMEOUT).
func (s *Server) recallApp(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	q := req.Args.(*idl.RecallAppRequest)
	refuse := func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.RecallAppResponse{Err: e, Info: idl.NewAppInfo()}
	}
	var started bool
	v, code := s.serve(ctx, func(ctx context.Context) idl.Value {
		if resp := s.m.startRecall(ctx, q); resp != nil {
			return resp
		}
		started = true
		return nil
	}, refuse)
	if !started {
		return forClient(req.Header, v), code
	}
	var resp *idl.RecallAppResponse
	err := s.waitState(ctx, func() bool {
		resp = s.m.recallDone(q.AppID)
		return resp != nil
	})
	if err != nil {
		if !errors.Is(err, errNotServing) {
			return &idl.RecallAppResponse{Err: errCode(wire.ErrTimeout), Info: idl.NewAppInfo()}, wire.OK
		}
		code, leader := s.refusal()
		if code == "" {
			code = errCode(wire.ErrServiceNotActive)
		}
		return forClient(req.Header, refuse(code, leader)), wire.OK
	}
	if resp.Err == errCode(wire.OK) {
		// Available once every partition has a primary; answered, as a create is, once each
		// has its intended one (the placement's first member) and its secondaries, or after
		// the create's wait: no leadership change follows the reply.
		s.waitTableReady(ctx, q.AppID, s.readyWait(req.Header), "recall")
	}
	return forClient(req.Header, resp), wire.OK
}

// waitState runs done on the state goroutine each time the machine's state may have
// changed (a map applied, a replica server's report) until it returns true. It fails with
// ctx's error, errNotServing when this meta stops leading, or errStopped.
func (s *Server) waitState(ctx context.Context, done func() bool) error {
	for {
		var (
			changed <-chan struct{}
			ok      bool
			serving bool
		)
		if err := s.do(ctx, func() {
			if serving = s.follow(); serving {
				changed = s.m.watch()
				ok = done()
			}
		}); err != nil {
			return err
		}
		switch {
		case !serving:
			return errNotServing
		case ok:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("meta: waiting: %w", ctx.Err())
		}
	}
}
