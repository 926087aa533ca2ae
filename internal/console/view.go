package console

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// The console API's answers (JSON). Times are unix milliseconds, 0 when unknown; rates are
// requests per second and latencies nanoseconds, over the replica servers' last 10 s
// window; sizes are bytes.

// sampling says how fresh the sampled numbers are.
type sampling struct {
	IntervalMS int64 `json:"interval_ms"`
	// LastMS is when the last round of samples ended (0: none yet).
	LastMS int64 `json:"last_ms"`
	// Keep is how many points the charts keep.
	Keep int `json:"keep"`
}

type clusterView struct {
	Cluster  string      `json:"cluster"`
	Leader   string      `json:"leader"`
	Term     uint64      `json:"term"`
	Metas    []metaView  `json:"metas"`
	Nodes    []nodeView  `json:"nodes"`
	Summary  summaryView `json:"summary"`
	History  []point     `json:"history"`
	Sampling sampling    `json:"sampling"`
}

type metaView struct {
	Addr   string `json:"addr"`
	Leader bool   `json:"leader"`
	// Reachable is whether it answered the last round's probe (null: not probed yet).
	Reachable *bool  `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

type nodeView struct {
	Addr       string `json:"addr"`
	Alive      bool   `json:"alive"`
	LastSyncMS int64  `json:"last_sync_ms"`
	Replicas   int    `json:"replicas"`
	Primaries  int    `json:"primaries"`
	// DiskBytes is the size of its replicas' stores (null: not sampled).
	DiskBytes *int64  `json:"disk_bytes"`
	ReadQPS   float64 `json:"read_qps"`
	WriteQPS  float64 `json:"write_qps"`
	// Error is why the last round could not read it.
	Error string `json:"error,omitempty"`
}

type summaryView struct {
	Tables     int     `json:"tables"`
	Partitions int     `json:"partitions"`
	Healthy    int     `json:"healthy_partitions"`
	AliveNodes int     `json:"alive_nodes"`
	DeadNodes  int     `json:"dead_nodes"`
	ReadQPS    float64 `json:"read_qps"`
	WriteQPS   float64 `json:"write_qps"`
	DiskBytes  int64   `json:"disk_bytes"`
}

type healthView struct {
	Healthy    int `json:"healthy"`
	Unhealthy  int `json:"unhealthy"`
	Unwritable int `json:"unwritable"`
	Unreadable int `json:"unreadable"`
}

type opView struct {
	Op  string  `json:"op"`
	QPS float64 `json:"qps"`
	// P99 is the worst p99 among the partitions that served the operation.
	P99 int64 `json:"p99_ns"`
}

type tableView struct {
	AppID        int32      `json:"app_id"`
	Name         string     `json:"name"`
	Partitions   int        `json:"partitions"`
	ReplicaCount int32      `json:"replica_count"`
	CreatedMS    int64      `json:"created_ms"`
	Health       healthView `json:"health"`
	// Ops are the operations that had requests in the window, in a fixed order.
	Ops      []opView `json:"ops"`
	ReadQPS  float64  `json:"read_qps"`
	WriteQPS float64  `json:"write_qps"`
	// SizeBytes is the size of one copy (the primaries' stores); DiskBytes that of every
	// replica.
	SizeBytes int64 `json:"size_bytes"`
	DiskBytes int64 `json:"disk_bytes"`
}

type tablesView struct {
	Cluster  string      `json:"cluster"`
	Tables   []tableView `json:"tables"`
	Sampling sampling    `json:"sampling"`
}

type partitionView struct {
	Index       int32    `json:"index"`
	Ballot      int64    `json:"ballot"`
	Primary     string   `json:"primary"`
	Secondaries []string `json:"secondaries"`
	Dropped     []string `json:"dropped"`
	Health      string   `json:"health"`
	// SizeBytes is the primary's store (another replica's without a primary; null: not
	// sampled).
	SizeBytes *int64  `json:"size_bytes"`
	ReadQPS   float64 `json:"read_qps"`
	WriteQPS  float64 `json:"write_qps"`
}

type tableDetailView struct {
	Cluster    string          `json:"cluster"`
	Table      tableView       `json:"table"`
	PartList   []partitionView `json:"partitions"`
	History    []point         `json:"history"`
	Sampling   sampling        `json:"sampling"`
	Operations []Operation     `json:"operations"`
}

type operationsView struct {
	Cluster    string      `json:"cluster"`
	Operations []Operation `json:"operations"`
	Sampling   sampling    `json:"sampling"`
}

// sampled is what a view takes from the samples, copied under the console's lock.
type sampled struct {
	at          time.Time
	nodes       map[string]*nodeSample
	metas       map[string]string
	compactions map[int32]*compactionCount
	cluster     history
	tables      map[int32]history
}

// partStats is one partition's sampled metrics, summed over its replicas.
type partStats struct {
	ops  [numOps]opStat
	disk map[string]int64 // by server
}

func (p *partStats) rates() (read, write float64) {
	for i, s := range p.ops {
		if isWrite(i) {
			write += s.qps
		} else {
			read += s.qps
		}
	}
	return read, write
}

// size is the primary's store size, or the largest replica's without a primary.
func (p *partStats) size(primary string) (int64, bool) {
	if d, ok := p.disk[primary]; ok {
		return d, true
	}
	if len(p.disk) == 0 {
		return 0, false
	}
	var m int64
	for _, d := range p.disk {
		m = max(m, d)
	}
	return m, true
}

// byPartition sums the servers' samples per partition.
func (s *sampled) byPartition() map[gpid]*partStats {
	out := map[gpid]*partStats{}
	for addr, ns := range s.nodes {
		for id, r := range ns.replicas {
			p := out[id]
			if p == nil {
				p = &partStats{disk: map[string]int64{}}
				out[id] = p
			}
			p.disk[addr] = r.disk
			for i, o := range r.ops {
				if o.qps > 0 {
					p.ops[i].qps += o.qps
					p.ops[i].p99 = max(p.ops[i].p99, o.p99)
				}
			}
		}
	}
	return out
}

func (c *Console) sampling(s *sampled) sampling {
	v := sampling{IntervalMS: c.cfg.Interval.Milliseconds(), Keep: c.cfg.History}
	if !s.at.IsZero() {
		v.LastMS = s.at.UnixMilli()
	}
	return v
}

func unixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (c *Console) clusterView(st *State, s *sampled) clusterView {
	v := clusterView{Cluster: st.Cluster, Leader: st.Leader, Term: st.Term, Metas: []metaView{}, Nodes: []nodeView{},
		History: s.cluster, Sampling: c.sampling(s)}
	if v.History == nil {
		v.History = []point{}
	}
	for _, m := range st.Metas {
		mv := metaView{Addr: m, Leader: m == st.Leader}
		if mv.Leader {
			mv.Reachable = new(true)
		} else if msg, ok := s.metas[m]; ok {
			mv.Reachable, mv.Error = new(msg == ""), msg
		}
		v.Metas = append(v.Metas, mv)
	}
	for _, n := range st.Nodes {
		nv := nodeView{Addr: n.Addr, Alive: n.Alive, LastSyncMS: unixMS(n.LastSync), Replicas: n.Replicas, Primaries: n.Primaries}
		if n.Alive {
			v.Summary.AliveNodes++
		} else {
			v.Summary.DeadNodes++
		}
		if ns := s.nodes[n.Addr]; ns != nil && n.Alive {
			nv.Error = ns.err
			if ns.err == "" {
				var disk int64
				for _, r := range ns.replicas {
					disk += r.disk
					var p point
					p.add(&r)
					nv.ReadQPS += p.ReadQPS
					nv.WriteQPS += p.WriteQPS
				}
				nv.DiskBytes = &disk
				v.Summary.DiskBytes += disk
				v.Summary.ReadQPS += nv.ReadQPS
				v.Summary.WriteQPS += nv.WriteQPS
			}
		}
		v.Nodes = append(v.Nodes, nv)
	}
	for _, t := range st.Tables {
		v.Summary.Tables++
		v.Summary.Partitions += len(t.Partitions)
		for _, p := range t.Partitions {
			if p.Health == Healthy {
				v.Summary.Healthy++
			}
		}
	}
	return v
}

// tableView summarises a table; parts are the sampled partitions (of every table).
func tableSummary(t *Table, parts map[gpid]*partStats) tableView {
	v := tableView{AppID: t.AppID, Name: t.Name, Partitions: len(t.Partitions), ReplicaCount: t.ReplicaCount,
		CreatedMS: unixMS(t.Created), Ops: []opView{}}
	var ops [numOps]opStat
	for _, p := range t.Partitions {
		switch p.Health {
		case Healthy:
			v.Health.Healthy++
		case Unhealthy:
			v.Health.Unhealthy++
		case Unwritable:
			v.Health.Unwritable++
		case Unreadable:
			v.Health.Unreadable++
		}
		ps := parts[gpid{t.AppID, p.Index}]
		if ps == nil {
			continue
		}
		r, w := ps.rates()
		v.ReadQPS += r
		v.WriteQPS += w
		if size, ok := ps.size(p.Primary); ok {
			v.SizeBytes += size
		}
		for _, d := range ps.disk {
			v.DiskBytes += d
		}
		for i, o := range ps.ops {
			ops[i].qps += o.qps
			ops[i].p99 = max(ops[i].p99, o.p99)
		}
	}
	for i, o := range ops {
		if o.qps > 0 {
			v.Ops = append(v.Ops, opView{Op: allOps[i], QPS: o.qps, P99: o.p99})
		}
	}
	return v
}

func (c *Console) tablesView(st *State, s *sampled) tablesView {
	parts := s.byPartition()
	v := tablesView{Cluster: st.Cluster, Tables: []tableView{}, Sampling: c.sampling(s)}
	for i := range st.Tables {
		v.Tables = append(v.Tables, tableSummary(&st.Tables[i], parts))
	}
	return v
}

func (c *Console) tableDetail(st *State, s *sampled, t *Table) tableDetailView {
	parts := s.byPartition()
	v := tableDetailView{Cluster: st.Cluster, Table: tableSummary(t, parts), PartList: []partitionView{}, History: s.tables[t.AppID],
		Sampling: c.sampling(s), Operations: []Operation{}}
	if v.History == nil {
		v.History = []point{}
	}
	for _, p := range t.Partitions {
		pv := partitionView{Index: p.Index, Ballot: p.Ballot, Primary: p.Primary, Health: p.Health,
			Secondaries: nonNil(p.Secondaries), Dropped: nonNil(p.Dropped)}
		if ps := parts[gpid{t.AppID, p.Index}]; ps != nil {
			if size, ok := ps.size(p.Primary); ok {
				pv.SizeBytes = &size
			}
			pv.ReadQPS, pv.WriteQPS = ps.rates()
		}
		v.PartList = append(v.PartList, pv)
	}
	for _, op := range c.operations(st, s) {
		if op.Table == t.Name {
			v.Operations = append(v.Operations, op)
		}
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// operations are the meta's long operations followed by the manual compactions in
// progress (some replicas queuing or running), ordered by table, partition and kind.
func (c *Console) operations(st *State, s *sampled) []Operation {
	out := slices.Clone(st.Operations)
	for _, t := range st.Tables {
		cc := s.compactions[t.AppID]
		if cc == nil || cc.Queuing+cc.Running == 0 {
			continue
		}
		out = append(out, Operation{Kind: "manual_compaction", Table: t.Name, Partition: -1,
			Detail: fmt.Sprintf("%d replicas compacting, %d queuing", cc.Running, cc.Queuing),
			Done:   cc.Finished, Total: cc.Finished + cc.Running + cc.Queuing, Unit: "replicas"})
	}
	if out == nil {
		out = []Operation{}
	}
	slices.SortStableFunc(out, func(a, b Operation) int {
		switch {
		case a.Table != b.Table:
			return cmp.Compare(a.Table, b.Table)
		case a.Partition != b.Partition:
			return int(a.Partition - b.Partition)
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
	return out
}
