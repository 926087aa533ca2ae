package replica

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/storage"
	"github.com/gopegasus/pegasus/internal/wire"
)

// op is a client operation whose requests are counted and timed per partition.
type op int

const (
	opGet op = iota
	opMultiGet
	opBatchGet
	opSortKeyCount
	opTTL
	opScan
	opPut
	opRemove
	opMultiPut
	opMultiRemove
	opIncr
	opCheckAndSet
	opCheckAndMutate
	numOps
)

// opNames are the metric name prefixes of the operations (Pegasus's: get_requests, ...).
var opNames = [numOps]string{"get", "multi_get", "batch_get", "sortkey_count", "ttl", "scan",
	"put", "remove", "multi_put", "multi_remove", "incr", "check_and_set", "check_and_mutate"}

// opMetricNames are the names and descriptions of each operation's per-replica metrics,
// made once: a server describes thousands of replicas per /metrics request.
var opMetricNames = func() (out [numOps]struct{ requests, qps, latency, requestsDesc, qpsDesc, latencyDesc string }) {
	for o, name := range opNames {
		m := &out[o]
		m.requests, m.requestsDesc = name+"_requests", "The number of "+name+" requests"
		m.qps, m.qpsDesc = name+"_qps", "The "+name+" requests per second over the last window"
		m.latency, m.latencyDesc = name+"_latency_ns", "The latency of "+name+" requests over the last window"
	}
	return out
}()

func opOf(rpcName string) (op, bool) {
	switch rpcName {
	case idl.RPCGet:
		return opGet, true
	case idl.RPCMultiGet:
		return opMultiGet, true
	case idl.RPCBatchGet:
		return opBatchGet, true
	case idl.RPCSortKeyCount:
		return opSortKeyCount, true
	case idl.RPCTTL:
		return opTTL, true
	case idl.RPCGetScanner, idl.RPCScan:
		return opScan, true
	case idl.RPCPut:
		return opPut, true
	case idl.RPCRemove:
		return opRemove, true
	case idl.RPCMultiPut:
		return opMultiPut, true
	case idl.RPCMultiRemove:
		return opMultiRemove, true
	case idl.RPCIncr:
		return opIncr, true
	case idl.RPCCheckAndSet:
		return opCheckAndSet, true
	case idl.RPCCheckAndMutate:
		return opCheckAndMutate, true
	}
	return 0, false
}

func (o op) isWrite() bool { return o >= opPut }

// requestStats are a partition replica's request counters; every field is updated with
// atomic operations only.
type requestStats struct {
	// ops are made on an operation's first request: a replica that never serves one costs
	// nothing for it (a Timer is some 4 KiB, an idle server hosts thousands of replicas).
	ops        [numOps]atomic.Pointer[metric.Timer]
	readBytes  atomic.Int64
	writeBytes atomic.Int64
	slow       atomic.Int64
}

// timer returns the Timer of operation o, made on first use.
func (st *requestStats) timer(o op) *metric.Timer {
	if t := st.ops[o].Load(); t != nil {
		return t
	}
	st.ops[o].CompareAndSwap(nil, new(metric.Timer))
	return st.ops[o].Load()
}

// statsTable holds the request statistics of the partition replicas a server hosts, a
// copy-on-write map: requests read it without a lock.
type statsTable struct {
	mu sync.Mutex // serializes copies
	m  atomic.Pointer[map[idl.GPID]*requestStats]
}

// raftCounters are a partition replica's raft counters, shown by its metrics.
type raftCounters struct {
	leaderChanges atomic.Int64
	// handovers counts the leadership transfers this replica started and saw end, and
	// handoversFailed those of them that did not hand the leadership over.
	handovers       atomic.Int64
	handoversFailed atomic.Int64
	// leaseStalls counts the stalls of the loop after which this leader's lease reads waited
	// for the group to confirm its leadership (reads.go).
	leaseStalls   atomic.Int64
	snapshotsSent atomic.Int64
	logStart      atomic.Uint64 // first index the raft log still holds
}

func (s *Server) statsOf(pid idl.GPID) *requestStats {
	if m := s.stats.m.Load(); m != nil {
		if st := (*m)[pid]; st != nil {
			return st
		}
	}
	if s.partition(pid) == nil {
		return nil // not hosted here: nothing to count against
	}
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	old := s.stats.m.Load()
	next := map[idl.GPID]*requestStats{}
	if old != nil {
		if st := (*old)[pid]; st != nil {
			return st
		}
		for k, v := range *old {
			if s.partition(k) != nil {
				next[k] = v // forget the partitions that left this server
			}
		}
	}
	st := &requestStats{}
	next[pid] = st
	s.stats.m.Store(&next)
	return st
}

// counted wraps the handler of a client RPC: client operations are counted, timed, and
// logged when slower than the slow-query threshold, on the server that serves them.
func (s *Server) counted(name string, h rpc.HandlerFunc) rpc.HandlerFunc {
	o, ok := opOf(name)
	if !ok {
		return h
	}
	return func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		start := time.Now()
		v, code := h(ctx, req)
		d := time.Since(start)
		pid := idl.GPID{AppID: req.Header.AppID, PartitionIndex: req.Header.PartitionIndex}
		st := s.statsOf(pid)
		if st == nil {
			return v, code
		}
		st.timer(o).Observe(d)
		if o.isWrite() {
			st.writeBytes.Add(int64(req.BodySize))
		} else if code == wire.OK {
			st.readBytes.Add(replyBytes(v))
		}
		if th := s.settings.SlowQueryThresholdNS.Get(); th > 0 && uint64(d) >= th {
			st.slow.Add(1)
			s.lg.Warn("slow request", "rpc", name, "gpid", pid.String(),
				"latency", d, "remote", req.Remote.String(), "code", code.Name())
		}
		return v, code
	}
}

// replyBytes is how many key and value bytes a read reply carries.
func replyBytes(v idl.Value) int64 {
	var n int
	switch r := v.(type) {
	case *idl.ReadResponse:
		n = len(r.Value)
	case *idl.MultiGetResponse:
		for _, kv := range r.KVs {
			n += len(kv.Key) + len(kv.Value)
		}
	case *idl.ScanResponse:
		for _, kv := range r.KVs {
			n += len(kv.Key) + len(kv.Value)
		}
	case *idl.BatchGetResponse:
		for _, d := range r.Data {
			n += len(d.HashKey) + len(d.SortKey) + len(d.Value)
		}
	}
	return int64(n)
}

func gpidAttrs(pid idl.GPID) [][2]string {
	return [][2]string{{"table_id", strconv.Itoa(int(pid.AppID))}, {"partition_id", strconv.Itoa(int(pid.PartitionIndex))}}
}

// replicaMetrics is how many metrics a replica entity has (requests, bytes, storage and
// raft, duplication): the capacity the first replica's list is made with, the next ones'
// being the longest list made so far.
const replicaMetrics = 3*int(numOps) + 3 + 24 + 11

// metricEntities describes the server's metrics: the server, each table it hosts replicas
// of, and each partition replica.
func (s *Server) metricEntities(context.Context) []metric.Entity {
	now := time.Now()
	s.mu.RLock()
	parts := make([]*partition, 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	s.mu.RUnlock()
	var statsMap map[idl.GPID]*requestStats
	if m := s.stats.m.Load(); m != nil {
		statsMap = *m
	}
	type tableSum struct {
		requests              [numOps]int64
		readBytes, writeBytes int64
		disk                  uint64
		sst                   int64
		replicas, primaries   int64
	}
	tables := map[int32]*tableSum{}
	var tableOrder []int32
	var out []metric.Entity
	var primaries, slowTotal int64
	shippers := s.dups.byPartition()
	listSize := replicaMetrics
	out = make([]metric.Entity, 0, len(parts))
	for _, p := range parts {
		ts := tables[p.pid.AppID]
		if ts == nil {
			ts = &tableSum{}
			tables[p.pid.AppID] = ts
			tableOrder = append(tableOrder, p.pid.AppID)
		}
		ts.replicas++
		leader := p.isLeader.Load()
		if leader {
			primaries++
			ts.primaries++
		}
		e := metric.Entity{Type: "replica", ID: "replica@" + p.pid.String(), Attrs: gpidAttrs(p.pid),
			Metrics: make([]metric.Metric, 0, listSize)}
		st := statsMap[p.pid]
		if st == nil {
			st = s.statsOf(p.pid) // every replica reports every metric, from the start
		}
		if st != nil {
			for o := range numOps {
				var (
					n, rate int64
					q       [5]int64
				)
				if t := st.ops[o].Load(); t != nil {
					n = t.Count()
					q, rate = t.Window(now)
				}
				ts.requests[o] += n
				mn := &opMetricNames[o]
				e.Metrics = append(e.Metrics,
					metric.CounterOf(mn.requests, "Requests", mn.requestsDesc, n),
					metric.GaugeOf(mn.qps, "Requests", mn.qpsDesc, rate),
					metric.Metric{Kind: metric.Percentile, Name: mn.latency, Unit: "NanoSeconds", Desc: mn.latencyDesc, P: q})
			}
			rb, wb, slow := st.readBytes.Load(), st.writeBytes.Load(), st.slow.Load()
			ts.readBytes += rb
			ts.writeBytes += wb
			slowTotal += slow
			e.Metrics = append(e.Metrics,
				metric.CounterOf("read_bytes", "Bytes", "The bytes of keys and values read", rb),
				metric.CounterOf("write_bytes", "Bytes", "The bytes of write requests", wb),
				metric.CounterOf("slow_requests", "Requests", "The requests slower than rocksdb_slow_query_threshold_ns", slow))
		}
		db, release := p.readDB()
		dm := db.Metrics()
		cs := db.CompactionStatus()
		release()
		ts.disk += dm.DiskBytes
		ts.sst += dm.TableBytes
		running := int64(0)
		if cs.State == storage.CompactionRunning {
			running = 1
		}
		applied := p.applied.Load()
		logEntries := int64(0)
		if ls := p.raftStats.logStart.Load(); applied > ls {
			logEntries = int64(applied - ls)
		}
		e.Metrics = append(e.Metrics,
			metric.GaugeOf("rdb_total_sst_files", "Files", "The number of sstables", dm.TableFiles),
			metric.GaugeOf("rdb_total_sst_size_mb", "MegaBytes", "The size of the sstables", dm.TableBytes>>20),
			metric.GaugeOf("rdb_total_sst_bytes", "Bytes", "The size of the sstables", dm.TableBytes),
			metric.GaugeOf("rdb_disk_bytes", "Bytes", "The size of the store's live files (sstables, WAL, manifest)", int64(dm.DiskBytes)),
			metric.GaugeOf("rdb_memtable_bytes", "Bytes", "The size of the memtables", int64(dm.MemTableBytes)),
			metric.CounterOf("rdb_compactions", "Compactions", "The number of compactions", dm.Compactions),
			metric.CounterOf("rdb_flushes", "Flushes", "The number of memtable flushes", dm.Flushes),
			metric.GaugeOf("rdb_compaction_debt_bytes", "Bytes", "The estimated bytes compactions still have to rewrite", int64(dm.CompactionDebt)),
			metric.GaugeOf("rdb_read_amplification", "Amplification", "The read amplification", int64(dm.ReadAmplification)),
			metric.CounterOf("rdb_expired_records_reclaimed", "Keys", "The expired records the sweeper deleted", dm.ExpiredReclaimed),
			metric.GaugeOf("manual_compaction_running", "Compactions", "1 while a manual compaction of the replica runs", running),
			metric.GaugeOf("raft_is_primary", "Replicas", "1 if this replica is the raft leader (primary)", b2i(leader)),
			metric.GaugeOf("raft_term", "Rounds", "The replica's raft term", int64(p.term.Load())),
			metric.CounterOf("raft_leader_changes", "Changes", "The leadership changes this replica saw", p.raftStats.leaderChanges.Load()),
			metric.CounterOf("raft_handovers", "Changes", "The planned leadership transfers this replica started", p.raftStats.handovers.Load()),
			metric.CounterOf("raft_handovers_failed", "Changes", "The planned leadership transfers this replica started that did not complete", p.raftStats.handoversFailed.Load()),
			metric.GaugeOf("raft_quiesced", "Replicas", "1 while this replica's raft group is quiesced here (its ticker stopped)", b2i(p.quiesce.quiet.Load() != ticking)),
			metric.CounterOf("raft_quiesce_wakes", "Changes", "The times this replica woke from quiescence", p.quiesce.wakes.Load()),
			metric.CounterOf("raft_ticks", "Ticks", "The raft ticks of this replica's loop", p.quiesce.ticks.Load()),
			metric.CounterOf("raft_lease_stalls", "Stalls", "The stalls of this leader's loop after which its lease reads waited for the group to confirm its leadership", p.raftStats.leaseStalls.Load()),
			metric.GaugeOf("raft_applied_index", "Mutations", "The last applied raft index", int64(applied)),
			metric.GaugeOf("raft_log_entries", "Mutations", "The applied entries the raft log still holds", logEntries),
			metric.CounterOf("raft_snapshots_installed", "Checkpoints", "The snapshots this replica installed", p.snapshots.Load()),
			metric.CounterOf("raft_snapshots_sent", "Checkpoints", "The snapshots this replica sent to others", p.raftStats.snapshotsSent.Load()),
		)
		e.Metrics = appendDupMetrics(e.Metrics, p, shippers[p.pid], now)
		listSize = max(listSize, len(e.Metrics))
		out = append(out, e)
	}
	for _, id := range tableOrder {
		ts := tables[id]
		e := metric.Entity{Type: "table", ID: fmt.Sprintf("table@%d", id), Attrs: [][2]string{{"table_id", strconv.Itoa(int(id))}}}
		for o := range numOps {
			e.Metrics = append(e.Metrics, metric.CounterOf(opNames[o]+"_requests", "Requests",
				"The number of "+opNames[o]+" requests to the table's replicas on this server", ts.requests[o]))
		}
		e.Metrics = append(e.Metrics,
			metric.CounterOf("read_bytes", "Bytes", "The bytes read from the table's replicas on this server", ts.readBytes),
			metric.CounterOf("write_bytes", "Bytes", "The bytes written to the table's replicas on this server", ts.writeBytes),
			metric.GaugeOf("rdb_disk_bytes", "Bytes", "The size of the table's replicas on this server", int64(ts.disk)),
			metric.GaugeOf("rdb_total_sst_bytes", "Bytes", "The size of the sstables of the table's replicas on this server", ts.sst),
			metric.GaugeOf("replicas", "Replicas", "The table's replicas on this server", ts.replicas),
			metric.GaugeOf("primary_replicas", "Replicas", "The table's primaries on this server", ts.primaries))
		out = append(out, e)
	}
	rm := s.rpc.Metrics()
	quiesced, quiesceWakes := s.QuiescedGroups()
	server := metric.Entity{Type: "server", ID: "server", Metrics: []metric.Metric{
		metric.GaugeOf("total_replicas", "Replicas", "The total number of replicas", int64(len(parts))),
		metric.GaugeOf("primary_replicas", "Replicas", "The number of primaries", primaries),
		metric.GaugeOf("rpc_open_connections", "Sessions", "The open client connections", rm.OpenConnections),
		metric.CounterOf("rpc_connections", "Sessions", "The connections accepted", rm.TotalConnections),
		metric.CounterOf("rpc_requests", "Requests", "The RPC requests received", rm.Requests),
		metric.CounterOf("rpc_bad_frames", "Requests", "The malformed frames that closed a connection", rm.BadFrames),
		metric.CounterOf("rpc_unknown_rpcs", "Requests", "The requests for an RPC the server does not know", rm.UnknownRPCs),
		metric.CounterOf("rpc_peer_connections", "Sessions", "The connections that authenticated as a member of the cluster", rm.PeerConnections),
		metric.CounterOf("rpc_peer_connections_refused", "Sessions", "The connections whose peer authentication failed (no or another cluster's secret)", rm.PeerConnectionsRefused),
		metric.CounterOf("rpc_peer_requests_refused", "Requests", "The internal requests (raft, forwards, snapshots) refused because their connection was not an authenticated member", rm.PeerRequestsRefused),
		metric.CounterOf("raft_messages_refused", "Requests", "The raft messages and snapshots dropped because their sender was not who it claimed or not a member of the group", s.raftRefused.Load()),
		metric.CounterOf("raft_log_syncs", "Operations", "The fsyncs of the raft log", s.rlog.Syncs()),
		metric.GaugeOf("raft_quiesced_groups", "Replicas", "The replicas whose raft group is quiesced here", int64(quiesced)),
		metric.CounterOf("raft_quiesce_wakes", "Changes", "The times this server's replicas woke from quiescence", quiesceWakes),
		metric.CounterOf("rpc_tls_connections", "Sessions", "The client connections whose TLS handshake succeeded", rm.TLSConnections),
		metric.CounterOf("rpc_tls_handshake_failures", "Sessions", "The TLS handshakes that failed (a bad, missing or untrusted client certificate among them)", rm.TLSHandshakeFailures),
		metric.CounterOf("rpc_plaintext_refused", "Requests", "The plaintext thrift connections and HTTP requests refused because TLS is mandatory", rm.PlaintextRefused),
		metric.CounterOf("slow_requests", "Requests", "The requests slower than rocksdb_slow_query_threshold_ns", slowTotal),
		metric.CounterOf("forwarded_requests", "Requests", "The requests for a partition this server does not lead, forwarded to its leader", s.forwards.forwarded.Load()),
		metric.CounterOf("held_requests", "Requests", "The requests that waited here for a partition's new leader to be known", s.forwards.held.Load()),
		metric.CounterOf("split_forwarded_requests", "Requests", "The requests whose key a partition split moved to another partition, sent on to it", s.forwards.split.Load()),
		metric.CounterOf("split_child_requests_at_ancestor", "Requests", "The requests addressed to a split child this server has no replica of, served by the ancestor partition here that holds its keys (clients from before host_port see unregistered children at their parents' primaries)", s.forwards.toAncestor.Load()),
		metric.CounterOf("forward_failures", "Requests", "The requests that could not be forwarded to a new leader in time and were refused", s.forwards.failed.Load()),
	}}
	server.Metrics = append(server.Metrics, s.diskMetrics()...)
	if s.parking != nil {
		ps := s.parking.Stats()
		server.Metrics = append(server.Metrics,
			metric.GaugeOf("store_parked", "Replicas", "The replicas whose store is parked (its Pebble database closed until its next use)", int64(ps.Parked)),
			metric.CounterOf("store_parks", "Operations", "The parkings of idle stores", ps.Parks),
			metric.CounterOf("store_reopens", "Operations", "The reopens of parked stores", ps.Reopens),
			metric.CounterOf("store_reopen_us", "Microseconds", "The total time of the reopens of parked stores", ps.ReopenTime.Microseconds()),
			metric.GaugeOf("store_reopen_max_us", "Microseconds", "The longest reopen of a parked store", ps.ReopenMax.Microseconds()),
			metric.GaugeOf("store_open", "Replicas", "The replicas whose store is open (or opening) now, at most max_open_stores while others are idle", int64(ps.Open)),
			metric.CounterOf("store_evictions", "Operations", "The parkings of the least recently used idle stores made to keep within max_open_stores", ps.Evictions),
			metric.CounterOf("store_over_bound", "Operations", "The store opens past max_open_stores because every open store was in use", ps.OverBound))
	}
	server.Metrics = append(server.Metrics, s.opsMetrics()...)
	am := s.rpc.AuthMetrics()
	server.Metrics = append(server.Metrics,
		metric.CounterOf("client_auth_succeeded", "Sessions", "The client connections that authenticated (Kerberos negotiation ended in SASL_SUCC)", am.Authenticated),
		metric.CounterOf("client_auth_failed", "Sessions", "The client negotiations that failed (SASL_AUTH_FAIL; the connection is closed)", am.Failed),
		metric.CounterOf("client_unauthenticated_refused", "Requests", "The requests refused with ERR_UNAUTHENTICATED (mandatory_auth, connection not authenticated)", am.Refused),
		metric.CounterOf("acl_denied", "Requests", "The requests the access control denied (ERR_ACL_DENY, or 403 on HTTP)", s.settings.ACL.Denied()))
	server.Metrics = append(server.Metrics, s.overloadMetrics()...)
	server.Metrics = append(server.Metrics, s.admissionMetrics()...)
	server.Metrics = append(server.Metrics, s.transport.Metrics().ServerMetrics()...)
	out = append(out, hotkeyEntities(parts, now)...)
	return append([]metric.Entity{server}, out...)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
