package meta

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The meta side of duplication (package dup has the shared parts and the shipping): the
// duplications of each table live in the cluster map, so a meta failover keeps them and
// their confirmed decrees; the RPCs that add, change, query, list and report them run on the
// state goroutine; the steps toward the follower cluster are driven by the leader's
// dupDriver (dup_driver.go), which resumes them after a failover from the map's statuses.

// duplication is one duplication of a table to a remote cluster.
type duplication struct {
	ID             int32                   `json:"dupid"`
	Remote         string                  `json:"remote"`
	RemoteApp      string                  `json:"remote_app_name"`
	RemoteReplicas int32                   `json:"remote_replica_count"`
	Status         idl.DuplicationStatus   `json:"status"`
	FailMode       idl.DuplicationFailMode `json:"fail_mode"`
	CreateMS       int64                   `json:"create_ms"`
	// Partitions are the table's partitions' progress, by index.
	Partitions []dupPartition `json:"partitions"`
}

// dupPartition is one partition's progress of a duplication.
type dupPartition struct {
	// Confirmed is the last decree the follower applied, as saved; -1 before the first.
	Confirmed int64 `json:"confirmed"`
	// Checkpoint is the decree of the checkpoint the follower is seeded from; -1 before the
	// partition's primary prepared it.
	Checkpoint int64 `json:"checkpoint"`
	// LastCommitted is the last decree committed on the master, as last reported.
	LastCommitted int64 `json:"last_committed"`
	// Lagging is set once the partition's log dropped writes the follower never got.
	Lagging bool `json:"lagging,omitempty"`
}

// start is the decree after which the partition's log is shipped: the confirmed decree, or
// the seed's checkpoint before any confirmation; -1 when neither is known.
func (p dupPartition) start() int64 {
	if p.Confirmed >= 0 {
		return p.Confirmed
	}
	return p.Checkpoint
}

type addDup struct {
	AppID int32        `json:"app_id"`
	Dup   *duplication `json:"dup"`
}

type modifyDup struct {
	AppID int32 `json:"app_id"`
	ID    int32 `json:"dupid"`
	// From, when set, applies the change only if the duplication is still in that status
	// (the driver's steps: a user's change made meanwhile wins).
	From     *idl.DuplicationStatus   `json:"from,omitempty"`
	Status   *idl.DuplicationStatus   `json:"status,omitempty"`
	FailMode *idl.DuplicationFailMode `json:"fail_mode,omitempty"`
}

// dupProgress is one partition's reported progress; it only moves forward.
type dupProgress struct {
	AppID         int32 `json:"app_id"`
	ID            int32 `json:"dupid"`
	Pidx          int32 `json:"pidx"`
	Confirmed     int64 `json:"confirmed"`
	Checkpoint    int64 `json:"checkpoint"`
	LastCommitted int64 `json:"last_committed"`
	Lagging       bool  `json:"lagging,omitempty"`
}

func cloneDups(ds []*duplication) []*duplication {
	if ds == nil {
		return nil
	}
	out := make([]*duplication, len(ds))
	for i, d := range ds {
		c := *d
		c.Partitions = slices.Clone(d.Partitions)
		out[i] = &c
	}
	return out
}

func (t *table) dup(id int32) *duplication {
	for _, d := range t.Dups {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func (m *clusterMap) addDup(a *addDup) result {
	t := m.tableByID(a.AppID)
	switch {
	case t == nil || t.Status != idl.AppStatusAvailable:
		return result{Code: wire.ErrAppNotExist}
	case t.dup(a.Dup.ID) != nil || slices.ContainsFunc(t.Dups, func(d *duplication) bool { return d.Remote == a.Dup.Remote }):
		return result{Code: wire.ErrDupExist, AppID: t.AppID}
	case len(a.Dup.Partitions) != int(t.PartitionCount):
		return result{Code: wire.ErrInvalidParameters}
	}
	d := *a.Dup
	d.Partitions = slices.Clone(a.Dup.Partitions)
	t.Dups = append(t.Dups, &d)
	slices.SortFunc(t.Dups, func(a, b *duplication) int { return cmp.Compare(a.ID, b.ID) })
	return result{Code: wire.OK, AppID: t.AppID}
}

func (m *clusterMap) modifyDup(c *modifyDup) result {
	t := m.tableByID(c.AppID)
	if t == nil || t.Status != idl.AppStatusAvailable {
		return result{Code: wire.ErrAppNotExist}
	}
	d := t.dup(c.ID)
	switch {
	case d == nil:
		return result{Code: wire.ErrObjectNotFound}
	case c.From != nil && d.Status != *c.From:
		return result{Code: wire.ErrInvalidState, AppID: t.AppID}
	case c.Status != nil && *c.Status == idl.DupStatusRemoved:
		t.Dups = slices.DeleteFunc(t.Dups, func(x *duplication) bool { return x.ID == c.ID })
		if len(t.Dups) == 0 {
			t.Dups = nil
		}
		return result{Code: wire.OK, AppID: t.AppID}
	}
	if c.Status != nil {
		d.Status = *c.Status
	}
	if c.FailMode != nil {
		d.FailMode = *c.FailMode
	}
	return result{Code: wire.OK, AppID: t.AppID}
}

func (m *clusterMap) dupProgress(ps []dupProgress) result {
	for _, p := range ps {
		t := m.tableByID(p.AppID)
		if t == nil || t.Status != idl.AppStatusAvailable {
			continue
		}
		d := t.dup(p.ID)
		if d == nil || p.Pidx < 0 || int(p.Pidx) >= len(d.Partitions) {
			continue
		}
		dp := &d.Partitions[p.Pidx]
		dp.Confirmed = max(dp.Confirmed, p.Confirmed)
		if dp.Checkpoint < 0 {
			dp.Checkpoint = p.Checkpoint
		}
		dp.LastCommitted = max(dp.LastCommitted, p.LastCommitted)
		dp.Lagging = dp.Lagging || p.Lagging
	}
	return result{Code: wire.OK}
}

// dupKey names one partition of one duplication.
type dupKey struct {
	app, dup, pidx int32
}

// dupVolatile is the leader's memory of the duplications: progress reported but not saved
// yet, and the duplications whose next step toward the follower is under way.
type dupVolatile struct {
	pending     map[dupKey]dupProgress
	lastPersist time.Time
	busy        map[int32]bool // by dupid
	// stepErr is why the last step of a duplication failed (by dupid), until one succeeds.
	stepErr map[int32]string
}

func (v *dupVolatile) reset() {
	v.pending = map[dupKey]dupProgress{}
	v.busy = map[int32]bool{}
	v.stepErr = map[int32]string{}
}

// progressOf is a partition's progress: as saved, moved forward by what is pending.
func (m *machine) progressOf(t *table, d *duplication, pidx int) dupPartition {
	p := d.Partitions[pidx]
	if q, ok := m.dups.pending[dupKey{t.AppID, d.ID, int32(pidx)}]; ok {
		p.Confirmed = max(p.Confirmed, q.Confirmed)
		p.LastCommitted = max(p.LastCommitted, q.LastCommitted)
	}
	return p
}

// dupDisabled is the code of a duplication RPC when duplication is switched off.
func (m *machine) dupDisabled() bool { return !m.cfg.Settings.DupEnabled.Get() }

// addDuplication serves RPC_CM_ADD_DUPLICATION with operations.md §1's checks, in order.
func (m *machine) addDuplication(ctx context.Context, q *idl.DuplicationAddRequest) *idl.DuplicationAddResponse {
	fail := func(c wire.Code, format string, args ...any) *idl.DuplicationAddResponse {
		return &idl.DuplicationAddResponse{Err: errCode(c), Hint: idl.Some(fmt.Sprintf(format, args...))}
	}
	if m.dupDisabled() {
		return fail(wire.ErrServiceNotActive, "duplication is not enabled")
	}
	remoteApp := q.RemoteAppName.Or(q.AppName)
	replicas := q.RemoteReplicaCount.Or(0)
	peers := m.cfg.Peers
	if q.RemoteClusterName == m.cfg.ClusterName {
		return fail(wire.ErrInvalidParameters, "illegal operation: adding duplication to itself")
	}
	ignoreIDs := m.cfg.Settings.DupIgnoreOtherClusterIDs.Get()
	if _, ok := peers.ID(q.RemoteClusterName); !ok && !ignoreIDs {
		return fail(wire.ErrInvalidParameters, "cluster %q has no duplication cluster id in [%s]", q.RemoteClusterName, dup.GroupSection)
	}
	if _, ok := peers.ID(m.cfg.ClusterName); !ok && !ignoreIDs {
		// Its writes would carry no id the follower knows (upstream servers refuse to
		// start so).
		return fail(wire.ErrInvalidParameters, "this cluster (%q) has no duplication cluster id in [%s]", m.cfg.ClusterName, dup.GroupSection)
	}
	if _, ok := peers.Metas(q.RemoteClusterName); !ok {
		return fail(wire.ErrInvalidParameters, "cluster %q is not in [%s]", q.RemoteClusterName, dup.ClustersSection)
	}
	if replicas < 0 {
		return fail(wire.ErrInvalidParameters, "remote_replica_count %d is negative", replicas)
	}
	t := m.state.availableTable(q.AppName)
	if t == nil {
		return fail(wire.ErrAppNotExist, "table %s does not exist or is not available", q.AppName)
	}
	if replicas == 0 {
		replicas = t.ReplicaCount
	}
	for _, d := range t.Dups {
		if d.Remote == q.RemoteClusterName {
			return &idl.DuplicationAddResponse{Err: errCode(wire.ErrDupExist), AppID: t.AppID, DupID: d.ID,
				Hint:          idl.Some(fmt.Sprintf("table %s already has duplication %d to %s", t.Name, d.ID, d.Remote)),
				RemoteAppName: idl.Some(d.RemoteApp), RemoteReplicaCount: idl.Some(d.RemoteReplicas)}
		}
	}
	for _, o := range m.state.Tables {
		if o == t || o.Status != idl.AppStatusAvailable {
			continue
		}
		for _, d := range o.Dups {
			if d.Remote == q.RemoteClusterName && d.RemoteApp == remoteApp {
				return fail(wire.ErrInvalidParameters, "illegal operation: another table (%s) is also duplicated to %s of cluster %s",
					o.Name, remoteApp, q.RemoteClusterName)
			}
		}
	}
	now := m.cfg.Now()
	id := int32(now.Unix())
	for m.dupIDTaken(id) {
		id++
	}
	d := &duplication{ID: id, Remote: q.RemoteClusterName, RemoteApp: remoteApp, RemoteReplicas: replicas,
		Status: idl.DupStatusPrepare, FailMode: idl.DupFailSlow, CreateMS: now.UnixMilli(),
		Partitions: make([]dupPartition, t.PartitionCount)}
	for i := range d.Partitions {
		d.Partitions[i] = dupPartition{Confirmed: -1, Checkpoint: -1, LastCommitted: -1}
	}
	if !q.IsDuplicatingCheckpoint {
		// Only new writes: each primary ships its log from the first write proposed after
		// CreateMS (package dup).
		d.Status = idl.DupStatusLog
	}
	res, err := m.commit(ctx, &mutation{AddDup: &addDup{AppID: t.AppID, Dup: d}})
	if err != nil {
		return fail(commitErrCode(err), "cannot persist the duplication")
	}
	if res.Code != wire.OK {
		return fail(res.Code, "cannot add the duplication")
	}
	m.lg.Info("duplication added", "table", t.Name, "dupid", id, "remote", d.Remote, "remote_app", remoteApp,
		"status", d.Status.String())
	return &idl.DuplicationAddResponse{Err: errCode(wire.OK), AppID: t.AppID, DupID: id,
		RemoteAppName: idl.Some(remoteApp), RemoteReplicaCount: idl.Some(replicas)}
}

// dupIDTaken reports whether a duplication of any table has dupid id.
func (m *machine) dupIDTaken(id int32) bool {
	for _, t := range m.state.Tables {
		if t.dup(id) != nil {
			return true
		}
	}
	return false
}

// modifyDuplication serves RPC_CM_MODIFY_DUPLICATION.
func (m *machine) modifyDuplication(ctx context.Context, q *idl.DuplicationModifyRequest) *idl.DuplicationModifyResponse {
	fail := func(c wire.Code) *idl.DuplicationModifyResponse {
		return &idl.DuplicationModifyResponse{Err: errCode(c)}
	}
	if m.dupDisabled() {
		return fail(wire.ErrServiceNotActive)
	}
	t := m.state.availableTable(q.AppName)
	if t == nil {
		return fail(wire.ErrAppNotExist)
	}
	d := t.dup(q.DupID)
	if d == nil {
		return fail(wire.ErrObjectNotFound)
	}
	c := &modifyDup{AppID: t.AppID, ID: d.ID}
	if st, ok := q.Status.Get(); ok && st != d.Status {
		// A step under way (the driver waits on the follower's metas) holds back the other
		// changes; a removal goes through, and the step's outcome is then dropped.
		if m.dups.busy[d.ID] && st != idl.DupStatusRemoved {
			return &idl.DuplicationModifyResponse{Err: errCode(wire.ErrBusy), AppID: t.AppID}
		}
		if !dup.ValidStatus(st) || !dup.Transition(d.Status, st) {
			return &idl.DuplicationModifyResponse{Err: errCode(wire.ErrInvalidParameters), AppID: t.AppID}
		}
		c.Status = &st
	}
	if fm, ok := q.FailMode.Get(); ok && fm != d.FailMode {
		// FAIL_FAST would stop the server at a write the follower refuses, as upstream's
		// does: it is refused instead (slow and skip are what the shell offers).
		if !dup.ValidFailMode(fm) || fm == idl.DupFailFast {
			return &idl.DuplicationModifyResponse{Err: errCode(wire.ErrInvalidParameters), AppID: t.AppID}
		}
		c.FailMode = &fm
	}
	if c.Status == nil && c.FailMode == nil {
		return &idl.DuplicationModifyResponse{Err: errCode(wire.OK), AppID: t.AppID}
	}
	res, err := m.commit(ctx, &mutation{ModifyDup: c})
	if err != nil {
		return fail(commitErrCode(err))
	}
	if res.Code == wire.OK {
		m.lg.Info("duplication changed", "table", t.Name, "dupid", d.ID, "status", q.Status.V.String(),
			"status_set", q.Status.Set, "fail_mode", q.FailMode.V.String(), "fail_mode_set", q.FailMode.Set)
	}
	return &idl.DuplicationModifyResponse{Err: errCode(res.Code), AppID: t.AppID}
}

// entry describes d as the query and the list answer it.
func (m *machine) entry(t *table, d *duplication) idl.DuplicationEntry {
	e := idl.DuplicationEntry{DupID: d.ID, Status: d.Status, Remote: d.Remote, CreateTS: d.CreateMS,
		FailMode: idl.Some(d.FailMode), RemoteAppName: idl.Some(d.RemoteApp),
		RemoteReplicaCount: idl.Some(d.RemoteReplicas), Mode: idl.Some(idl.DuplicationModeFull)}
	progress := map[int32]int64{}
	states := map[int32]idl.DuplicationPartitionState{}
	for i := range d.Partitions {
		p := m.progressOf(t, d, i)
		progress[int32(i)] = p.Confirmed
		states[int32(i)] = idl.DuplicationPartitionState{ConfirmedDecree: p.Confirmed,
			LastCommittedDecree: p.LastCommitted, Lagging: p.Lagging}
	}
	e.Progress, e.PartitionStates = idl.Some(progress), idl.Some(states)
	return e
}

// queryDuplication serves RPC_CM_QUERY_DUPLICATION.
func (m *machine) queryDuplication(q *idl.DuplicationQueryRequest) *idl.DuplicationQueryResponse {
	if m.dupDisabled() {
		return &idl.DuplicationQueryResponse{Err: errCode(wire.ErrServiceNotActive), EntryList: []idl.DuplicationEntry{}}
	}
	t := m.state.availableTable(q.AppName)
	if t == nil {
		return &idl.DuplicationQueryResponse{Err: errCode(wire.ErrAppNotExist), EntryList: []idl.DuplicationEntry{}}
	}
	resp := &idl.DuplicationQueryResponse{Err: errCode(wire.OK), AppID: t.AppID, EntryList: []idl.DuplicationEntry{}}
	for _, d := range t.Dups {
		resp.EntryList = append(resp.EntryList, m.entry(t, d))
	}
	return resp
}

// listDuplication serves RPC_CM_LIST_DUPLICATION: every available table whose name
// matches, with its duplications (none included).
func (m *machine) listDuplication(q *idl.DuplicationListRequest) *idl.DuplicationListResponse {
	resp := &idl.DuplicationListResponse{Err: errCode(wire.OK), AppStates: map[string]idl.DuplicationAppState{}}
	if m.dupDisabled() {
		resp.Err = errCode(wire.ErrServiceNotActive)
		return resp
	}
	match, ok := nameMatcher(q.AppNamePattern, q.MatchType)
	if !ok {
		resp.Err = errCode(wire.ErrNotImplemented)
		resp.HintMessage = fmt.Sprintf("match type %s is not supported", q.MatchType)
		return resp
	}
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusAvailable || !match(t.Name) {
			continue
		}
		st := idl.DuplicationAppState{AppID: t.AppID, AppName: t.Name, PartitionCount: t.PartitionCount,
			Duplications: map[int32]idl.DuplicationEntry{}}
		for _, d := range t.Dups {
			st.Duplications[d.ID] = m.entry(t, d)
		}
		resp.AppStates[t.Name] = st
	}
	return resp
}

// nameMatcher returns the table-name filter of a pattern and match type; ok is false for a
// match type that is not supported.
func nameMatcher(pattern string, mt idl.PatternMatchType) (match func(string) bool, ok bool) {
	switch mt {
	case idl.PatternMatchAll:
		return func(string) bool { return true }, true
	case idl.PatternMatchExact:
		return func(n string) bool { return n == pattern }, true
	case idl.PatternMatchAnywhere:
		return func(n string) bool { return strings.Contains(n, pattern) }, true
	case idl.PatternMatchPrefix:
		return func(n string) bool { return strings.HasPrefix(n, pattern) }, true
	case idl.PatternMatchPostfix:
		return func(n string) bool { return strings.HasSuffix(n, pattern) }, true
	}
	return nil, false
}

// duplicationSync serves RPC_CM_DUPLICATION_SYNC: a replica server's primaries report their
// duplications' progress. A step of a partition (its checkpoint prepared, the follower
// seeded, the log found lagging) is saved at once; confirmed decrees at most every
// DupProgressInterval. The reply lists the duplications of the tables the server leads
// partitions of.
func (m *machine) duplicationSync(ctx context.Context, q *idl.DuplicationSyncRequest) *idl.DuplicationSyncResponse {
	resp := &idl.DuplicationSyncResponse{Err: errCode(wire.OK), DupMap: map[int32]map[int32]idl.DuplicationEntry{}}
	if m.dupDisabled() {
		resp.Err = errCode(wire.ErrServiceNotActive)
		return resp
	}
	addr := q.Node.String()
	if hp := q.HPNode; hp.Host != "" {
		addr = fmt.Sprintf("%s:%d", hp.Host, hp.Port)
	}
	n := m.nodes[addr]
	if n == nil {
		resp.Err = errCode(wire.ErrObjectNotFound)
		return resp
	}
	urgent := false
	for gpid, entries := range q.ConfirmList {
		t := m.state.tableByID(gpid.AppID)
		if t == nil || t.Status != idl.AppStatusAvailable || gpid.PartitionIndex < 0 || gpid.PartitionIndex >= t.PartitionCount {
			continue
		}
		for _, e := range entries {
			d := t.dup(e.DupID)
			if d == nil {
				continue
			}
			if m.noteProgress(t, d, gpid.PartitionIndex, &e) {
				urgent = true
			}
		}
	}
	m.persistProgress(ctx, urgent)
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusAvailable || len(t.Dups) == 0 || !m.leadsAny(n, t) {
			continue
		}
		ds := map[int32]idl.DuplicationEntry{}
		for _, d := range t.Dups {
			ds[d.ID] = m.entry(t, d)
		}
		resp.DupMap[t.AppID] = ds
	}
	return resp
}

// leadsAny reports whether n's last report says it leads a partition of t.
func (m *machine) leadsAny(n *node, t *table) bool {
	for i := range t.PartitionCount {
		if p, ok := m.primaryOf(t, i); ok && p == n {
			return true
		}
	}
	return false
}

// noteProgress records one partition's report as pending and reports whether it is a step
// to save at once.
func (m *machine) noteProgress(t *table, d *duplication, pidx int32, e *idl.DuplicationConfirmEntry) bool {
	saved := d.Partitions[pidx]
	k := dupKey{t.AppID, d.ID, pidx}
	p, ok := m.dups.pending[k]
	if !ok {
		p = dupProgress{AppID: t.AppID, ID: d.ID, Pidx: pidx, Confirmed: -1, Checkpoint: -1, LastCommitted: -1}
	}
	urgent := false
	lc := e.LastCommittedDecree.Or(-1)
	switch d.Status {
	case idl.DupStatusPrepare:
		if e.CheckpointPrepared && saved.Checkpoint < 0 && lc >= 0 {
			p.Checkpoint, urgent = lc, true
		}
	case idl.DupStatusApp:
		if e.ConfirmedDecree >= 0 && saved.Confirmed < 0 {
			p.Confirmed, urgent = e.ConfirmedDecree, true
		}
	case idl.DupStatusLog, idl.DupStatusPause:
		p.Confirmed = max(p.Confirmed, e.ConfirmedDecree)
		// The first confirmation of a partition that started without a known decree is
		// where its log is kept from: saved at once.
		urgent = saved.Confirmed < 0 && e.ConfirmedDecree >= 0
	}
	p.LastCommitted = max(p.LastCommitted, lc)
	if e.Lagging && !saved.Lagging {
		p.Lagging, urgent = true, true
	}
	if p.Confirmed > saved.Confirmed || p.Checkpoint >= 0 || p.LastCommitted > saved.LastCommitted || p.Lagging {
		m.dups.pending[k] = p
	}
	return urgent
}

// persistProgress saves the pending progress: now when urgent, else once
// DupProgressInterval passed since the last save.
func (m *machine) persistProgress(ctx context.Context, urgent bool) {
	if len(m.dups.pending) == 0 {
		return
	}
	now := m.cfg.Now()
	if !urgent && now.Sub(m.dups.lastPersist) < m.cfg.DupProgressInterval {
		return
	}
	ps := make([]dupProgress, 0, len(m.dups.pending))
	for _, p := range m.dups.pending {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b dupProgress) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Pidx, b.Pidx))
	})
	if _, err := m.commit(ctx, &mutation{DupProgress: ps}); err != nil {
		return // kept pending: retried with the next report
	}
	m.dups.lastPersist = now
	clear(m.dups.pending)
}

// dupAssignments are what every replica of partition pidx of t is told of its table's
// duplications: the saved progress, which decides how much log it keeps and where a new
// primary resumes.
func dupAssignments(t *table, pidx int) []cluster.DupAssignment {
	if len(t.Dups) == 0 {
		return nil
	}
	out := make([]cluster.DupAssignment, 0, len(t.Dups))
	for _, d := range t.Dups {
		p := d.Partitions[pidx]
		out = append(out, cluster.DupAssignment{ID: d.ID, Remote: d.Remote, RemoteApp: d.RemoteApp,
			Status: d.Status, FailMode: d.FailMode, Confirmed: p.Confirmed, Checkpoint: p.Checkpoint, CreateMS: d.CreateMS})
	}
	return out
}

// repeatedFollowerCreate answers a create of a duplication's follower table that exists: the
// master's meta repeats it until it hears back, and sends it once more, "created", when the
// follower holds its seed.
func (m *machine) repeatedFollowerCreate(ctx context.Context, t *table, q *idl.CreateAppRequest) *idl.CreateAppResponse {
	code, set := dup.RepeatedCreate(t.Envs, t.PartitionCount, q)
	if code != wire.OK {
		return &idl.CreateAppResponse{Err: errCode(code)}
	}
	if set != "" {
		res, err := m.commit(ctx, &mutation{UpdateEnvs: &updateEnvs{AppID: t.AppID, Set: map[string]string{dup.EnvFollowerStatus: set}}})
		if err != nil {
			return &idl.CreateAppResponse{Err: errCode(commitErrCode(err))}
		}
		if res.Code != wire.OK {
			return &idl.CreateAppResponse{Err: errCode(res.Code)}
		}
		m.lg.Info("follower table marked", "table", t.Name, dup.EnvFollowerStatus, set)
	}
	return &idl.CreateAppResponse{Err: errCode(wire.OK), AppID: t.AppID}
}

// registerDupHandlers registers the duplication RPCs with handle (New's helper: the leader
// serves them on the state goroutine, the others refuse them).
func (s *Server) registerDupHandlers(handle func(string, func(context.Context, idl.Value) idl.Value, func(idl.ErrorCode, string) idl.Value)) {
	handle(idl.RPCAddDuplication, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.addDuplication(ctx, a.(*idl.DuplicationAddRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.DuplicationAddResponse{Err: e} })
	handle(idl.RPCModifyDuplication, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.modifyDuplication(ctx, a.(*idl.DuplicationModifyRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.DuplicationModifyResponse{Err: e} })
	handle(idl.RPCQueryDuplication, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.queryDuplication(a.(*idl.DuplicationQueryRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.DuplicationQueryResponse{Err: e, EntryList: []idl.DuplicationEntry{}}
	})
	handle(idl.RPCListDuplication, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.listDuplication(a.(*idl.DuplicationListRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.DuplicationListResponse{Err: e, AppStates: map[string]idl.DuplicationAppState{}}
	})
	handle(idl.RPCDuplicationSync, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.duplicationSync(ctx, a.(*idl.DuplicationSyncRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.DuplicationSyncResponse{Err: e, DupMap: map[int32]map[int32]idl.DuplicationEntry{}}
	})
}
