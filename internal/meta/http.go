package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/httpapi"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/wire"
)

// httpAPI is the meta server's HTTP API (http-api.md §1, §2, §4): the builtins, and the
// /meta endpoints, which only the leader answers: the others redirect them to it (307).
func (s *Server) httpAPI() *httpapi.Mux {
	port := 0
	if _, p, err := net.SplitHostPort(s.cfg.Advertise); err == nil {
		port, _ = strconv.Atoi(p)
	}
	m := httpapi.New(httpapi.Options{Role: "meta", Version: s.cfg.Version, StartTime: s.m.startTime,
		Settings: s.settings.Registry(), Cluster: s.cfg.ClusterName, Port: port, Metrics: s.metricEntities, Now: s.cfg.Now})
	m.Before(s.redirect)
	m.Handle("/meta/cluster", "", "Gets the cluster's description.", s.httpCluster)
	m.Handle("/meta/apps", "[detail]", "Lists the available tables, with their health with detail.", s.httpApps)
	m.Handle("/meta/app", "name=<app_name>[&detail]", "Gets a table, with its partitions and their health with detail.", s.httpApp)
	m.Handle("/meta/nodes", "[detail]", "Lists the replica servers.", s.httpNodes)
	m.Handle("/meta/app_envs", "name=<app_name>", "Gets a table's envs.", s.httpAppEnvs)
	m.Handle("/meta/app/start_compaction", "", "Starts a manual compaction of a table (JSON body: app_name, type, target_level, bottommost_level_compaction, max_concurrent_running_count, trigger_time).", s.httpStartCompaction)
	m.Handle("/meta/app/usage_scenario", "", "Sets a table's usage scenario (JSON body: app_name, scenario).", s.httpUsageScenario)
	m.Handle("/meta/app/query_bulk_load", "name=<app_name>", "Gets the state of a table's bulk load.", s.httpQueryBulkLoad)
	m.Handle("/meta/app/start_bulk_load", "", "Starts a bulk load (JSON body: app_name, cluster_name, file_provider_type, remote_root_path).", s.httpStartBulkLoad)
	m.Handle("/meta/backup_policy", "name=<policy_name>", "Gets backup policies.", s.httpBackupPolicy)
	m.Handle("/meta/app/duplication", "name=<app_name>", "Gets a table's duplications.", s.httpDuplication)
	s.console.Mount(m)
	return m
}

// metaArgs are the arguments the queries refused with 400 on anything else accept.
var metaArgs = map[string][]string{
	"meta/apps":  {"detail"},
	"meta/app":   {"name", "detail"},
	"meta/nodes": {"detail"},
}

// redirect answers a /meta request on a meta that is not the leader: 307 to the same path and
// arguments on the leader (host "invalid host_port" when it is unknown). Unknown arguments of
// the queries that check them are refused with 400 first.
func (s *Server) redirect(w http.ResponseWriter, r *httpapi.Request) bool {
	if !strings.HasPrefix(r.Path, "meta/") {
		return false
	}
	if allowed, ok := metaArgs[r.Path]; ok && !r.Args.Only(allowed...) {
		httpapi.Reply(w, http.StatusBadRequest, "")
		return true
	}
	st := s.raft.status.Load()
	if st.isLeader {
		return false
	}
	leader := st.leader
	if leader == "" {
		leader = "invalid host_port"
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://" // a client of https gets the leader's https
	}
	loc := scheme + leader + "/" + r.Path
	for i, kv := range r.Args {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		loc += sep + kv[0] + "=" + kv[1]
	}
	w.Header().Set("Location", loc)
	httpapi.Reply(w, http.StatusTemporaryRedirect, "")
	return true
}

// onLeader runs fn on the state goroutine once this meta serves as the leader; otherwise it
// answers 500 with the reason.
func (s *Server) onLeader(w http.ResponseWriter, r *httpapi.Request, fn func(ctx context.Context)) {
	if !s.asLeader(r.Context(), func() { fn(r.Context()) }) {
		httpapi.Reply(w, http.StatusInternalServerError, wire.ErrServiceNotActive.Name())
	}
}

// asLeader runs fn on the state goroutine, with the node liveness brought up to date, if
// this meta serves as the leader; it reports whether fn ran.
func (s *Server) asLeader(ctx context.Context, fn func()) bool {
	served := false
	err := s.do(ctx, func() {
		if !s.follow() {
			return
		}
		s.m.refresh()
		served = true
		fn()
	})
	return err == nil && served
}

func (s *Server) httpCluster(w http.ResponseWriter, r *httpapi.Request) {
	s.onLeader(w, r, func(context.Context) {
		ci := s.m.clusterInfo(s.raft.status.Load().voters)
		var rows [][2]string
		for i, k := range ci.Keys {
			v := ci.Values[i]
			switch k {
			case "cluster_name":
				continue
			case "balance_operation_count":
				v = s.m.balanceOpCounts().json()
			}
			rows = append(rows, [2]string{k, v})
		}
		httpapi.ReplyTables(w, http.StatusOK, httpapi.KV("", rows...))
	})
}

// health counts a table's partitions by Pegasus's health rules.
type health struct{ fully, unhealthy, writeUnhealthy, readUnhealthy int }

func (m *machine) tableHealth(t *table) health {
	var h health
	for i := range t.Partitions {
		fully, writable, readable := partitionHealth(m.partitionConfig(t, int32(i)), t.ReplicaCount)
		if fully {
			h.fully++
		}
		if !writable {
			h.writeUnhealthy++
		}
		if !readable {
			h.readUnhealthy++
		}
	}
	h.unhealthy = len(t.Partitions) - h.fully
	return h
}

// partitionHealth applies Pegasus's health rules to one partition's configuration: fully
// healthy with a primary and all its replicas, writable with a primary and either all its
// replicas or at least two, readable with a primary.
func partitionHealth(pc idl.PartitionConfiguration, replicaCount int32) (fully, writable, readable bool) {
	readable = !pc.Primary.IsZero()
	n := len(pc.Secondaries)
	if readable {
		n++
	}
	fully = readable && int32(n) >= replicaCount
	writable = readable && (fully || n >= 2)
	return fully, writable, readable
}

func itoa[T ~int | ~int32 | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

func (s *Server) httpApps(w http.ResponseWriter, r *httpapi.Request) {
	_, detail := r.Args.Get("detail")
	s.onLeader(w, r, func(context.Context) {
		general := httpapi.Table{Name: "general_info", Columns: []string{"app_id", "status", "app_name", "app_type",
			"partition_count", "replica_count", "is_stateful", "create_time", "drop_time", "drop_expire", "envs_count"}}
		healthy := httpapi.Table{Name: "healthy_info", Columns: []string{"app_id", "app_name", "partition_count",
			"fully_healthy", "unhealthy", "write_unhealthy", "read_unhealthy"}}
		var total, fullyApps, unhealthyApps, writeApps, readApps int
		for _, t := range s.m.state.Tables {
			if t.Status != idl.AppStatusAvailable {
				continue
			}
			total++
			created := "-"
			if t.CreateSecond > 0 {
				created = time.Unix(t.CreateSecond, 0).Local().Format("2006-01-02 15:04:05.000")
			}
			general.Rows = append(general.Rows, []string{itoa(t.AppID), "AVAILABLE", t.Name, t.AppType,
				itoa(t.PartitionCount), itoa(t.ReplicaCount), strconv.FormatBool(t.IsStateful), created, "-", "-", itoa(len(t.Envs))})
			h := s.m.tableHealth(t)
			healthy.Rows = append(healthy.Rows, []string{itoa(t.AppID), t.Name, itoa(t.PartitionCount),
				itoa(h.fully), itoa(h.unhealthy), itoa(h.writeUnhealthy), itoa(h.readUnhealthy)})
			if h.unhealthy == 0 {
				fullyApps++
			} else {
				unhealthyApps++
			}
			if h.writeUnhealthy > 0 {
				writeApps++
			}
			if h.readUnhealthy > 0 {
				readApps++
			}
		}
		summary := httpapi.KV("summary", [2]string{"total_app_count", itoa(total)})
		tables := []httpapi.Table{general}
		if detail && total > 0 {
			tables = append(tables, healthy)
			summary.Rows = append(summary.Rows, []string{"fully_healthy_app_count", itoa(fullyApps)},
				[]string{"unhealthy_app_count", itoa(unhealthyApps)}, []string{"write_unhealthy_app_count", itoa(writeApps)},
				[]string{"read_unhealthy_app_count", itoa(readApps)})
		}
		httpapi.ReplyTables(w, http.StatusOK, append(tables, summary)...)
	})
}

// sortNodes orders "ip:port" addresses by host, then numerically by port.
func sortNodes(addrs []string) {
	slices.SortFunc(addrs, func(a, b string) int {
		ha, pa, _ := net.SplitHostPort(a)
		hb, pb, _ := net.SplitHostPort(b)
		if c := strings.Compare(ha, hb); c != 0 {
			return c
		}
		x, _ := strconv.Atoi(pa)
		y, _ := strconv.Atoi(pb)
		return x - y
	})
}

func (s *Server) httpApp(w http.ResponseWriter, r *httpapi.Request) {
	name, _ := r.Args.Get("name")
	_, detail := r.Args.Get("detail")
	s.onLeader(w, r, func(context.Context) {
		if name == "" {
			httpapi.Reply(w, http.StatusBadRequest, "app name shouldn't be empty")
			return
		}
		t := s.m.state.availableTable(name)
		if t == nil {
			httpapi.Reply(w, http.StatusNotFound, fmt.Sprintf("table not found: %q", name))
			return
		}
		general := httpapi.KV("general", [2]string{"app_name", t.Name}, [2]string{"app_id", itoa(t.AppID)},
			[2]string{"partition_count", itoa(t.PartitionCount)}, [2]string{"max_replica_count", itoa(t.ReplicaCount)})
		if !detail {
			httpapi.ReplyTables(w, http.StatusOK, general)
			return
		}
		replicas := httpapi.Table{Name: "replicas", Columns: []string{"pidx", "ballot", "replica_count", "primary", "secondaries"}}
		counts := map[string]*[2]int{}
		count := func(addr string, i int) {
			if counts[addr] == nil {
				counts[addr] = &[2]int{}
			}
			counts[addr][i]++
		}
		for i := range t.Partitions {
			pc := s.m.partitionConfig(t, int32(i))
			primary, n := "-", len(pc.Secondaries)
			if !pc.Primary.IsZero() {
				primary = pc.Primary.String()
				n++
				count(primary, 0)
			}
			var secs []string
			for _, a := range pc.Secondaries {
				secs = append(secs, a.String())
				count(a.String(), 1)
			}
			replicas.Rows = append(replicas.Rows, []string{itoa(i), itoa(pc.Ballot), fmt.Sprintf("%d/%d", n, t.ReplicaCount),
				primary, "[" + strings.Join(secs, ",") + "]"})
		}
		nodes := httpapi.Table{Name: "nodes", Columns: []string{"node", "primary", "secondary", "total"}}
		addrs := slices.Collect(maps.Keys(counts))
		sortNodes(addrs)
		var tp, ts int
		for _, a := range addrs {
			c := counts[a]
			tp, ts = tp+c[0], ts+c[1]
			nodes.Rows = append(nodes.Rows, []string{a, itoa(c[0]), itoa(c[1]), itoa(c[0] + c[1])})
		}
		nodes.Rows = append(nodes.Rows, []string{"total", itoa(tp), itoa(ts), itoa(tp + ts)})
		h := s.m.tableHealth(t)
		hk := httpapi.KV("healthy", [2]string{"fully_healthy_partition_count", itoa(h.fully)},
			[2]string{"unhealthy_partition_count", itoa(h.unhealthy)},
			[2]string{"write_unhealthy_partition_count", itoa(h.writeUnhealthy)},
			[2]string{"read_unhealthy_partition_count", itoa(h.readUnhealthy)})
		httpapi.ReplyTables(w, http.StatusOK, general, replicas, nodes, hk)
	})
}

func (s *Server) httpNodes(w http.ResponseWriter, r *httpapi.Request) {
	_, detail := r.Args.Get("detail")
	s.onLeader(w, r, func(context.Context) {
		cols := []string{"address", "status"}
		if detail {
			cols = append(cols, "replica_count", "primary_count", "secondary_count")
		}
		counts := s.m.nodeCounts()
		details := httpapi.Table{Name: "details", Columns: cols}
		addrs := slices.Collect(maps.Keys(s.m.nodes))
		sortNodes(addrs)
		alive := 0
		for _, a := range addrs {
			status := "UNALIVE"
			if s.m.nodes[a].alive {
				status = "ALIVE"
				alive++
			}
			row := []string{a, status}
			if detail {
				c := counts[a]
				row = append(row, itoa(c[0]+c[1]), itoa(c[0]), itoa(c[1]))
			}
			details.Rows = append(details.Rows, row)
		}
		summary := httpapi.KV("summary", [2]string{"total_node_count", itoa(len(addrs))},
			[2]string{"alive_node_count", itoa(alive)}, [2]string{"unalive_node_count", itoa(len(addrs) - alive)})
		httpapi.ReplyTables(w, http.StatusOK, details, summary)
	})
}

// nodeCounts counts, for every known replica server, the partitions of the available tables
// it serves as primary ([0]) and as secondary ([1]) in their current configurations.
func (m *machine) nodeCounts() map[string]*[2]int {
	counts := map[string]*[2]int{}
	for _, n := range m.nodes {
		counts[n.addr] = &[2]int{}
	}
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusAvailable {
			continue
		}
		for i := range t.Partitions {
			pc := m.partitionConfig(t, int32(i))
			if c := counts[pc.Primary.String()]; !pc.Primary.IsZero() && c != nil {
				c[0]++
			}
			for _, a := range pc.Secondaries {
				if c := counts[a.String()]; c != nil {
					c[1]++
				}
			}
		}
	}
	return counts
}

func (s *Server) httpAppEnvs(w http.ResponseWriter, r *httpapi.Request) {
	name, _ := r.Args.Get("name")
	s.onLeader(w, r, func(context.Context) {
		if name == "" {
			httpapi.Reply(w, http.StatusBadRequest, "app name shouldn't be empty")
			return
		}
		var rows [][2]string
		if t := s.m.state.availableTable(name); t != nil {
			for _, k := range slices.Sorted(maps.Keys(t.Envs)) {
				rows = append(rows, [2]string{k, t.Envs[k]})
			}
		}
		httpapi.ReplyTables(w, http.StatusOK, httpapi.KV("", rows...))
	})
}

// jsonBody decodes a POST body by Pegasus's rule: a JSON object whose fields are all known,
// or which has every known field; strings must be strings and ints JSON integers in int32.
func jsonBody(r *httpapi.Request, strs []string, ints []string) (map[string]string, map[string]int64, bool) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, nil, false
	}
	known := append(slices.Clone(strs), ints...)
	allKnown, allPresent := true, true
	for k := range raw {
		if !slices.Contains(known, k) {
			allKnown = false
		}
	}
	for _, k := range known {
		if _, ok := raw[k]; !ok {
			allPresent = false
		}
	}
	if !allKnown && !allPresent {
		return nil, nil, false
	}
	sv, iv := map[string]string{}, map[string]int64{}
	for _, k := range strs {
		if v, ok := raw[k]; ok {
			var x string
			if err := json.Unmarshal(v, &x); err != nil {
				return nil, nil, false
			}
			sv[k] = x
		}
	}
	for _, k := range ints {
		if v, ok := raw[k]; ok {
			n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 32)
			if err != nil {
				return nil, nil, false
			}
			iv[k] = n
		}
	}
	return sv, iv, true
}

// setEnvs sets table envs as the env RPC does and answers {"error","hint_message"}.
func (s *Server) setEnvs(w http.ResponseWriter, r *httpapi.Request, app string, envs map[string]string) {
	s.onLeader(w, r, func(ctx context.Context) {
		keys := slices.Sorted(maps.Keys(envs))
		var vals []string
		for _, k := range keys {
			vals = append(vals, envs[k])
		}
		resp := s.m.updateAppEnv(ctx, &idl.UpdateAppEnvRequest{AppName: app, Op: idl.AppEnvOpSet,
			Keys: idl.Some(keys), Values: idl.Some(vals)})
		hint := resp.HintMessage
		if resp.Err == errCode(wire.ErrAppNotExist) {
			hint = "app cannot be found"
		}
		httpapi.ReplyTables(w, http.StatusOK, httpapi.KV("", [2]string{"error", string(resp.Err)}, [2]string{"hint_message", hint}))
	})
}

// httpStartCompaction sets the manual compaction envs of a table; its replicas act on them
// at their next report to the meta (every second by default).
func (s *Server) httpStartCompaction(w http.ResponseWriter, r *httpapi.Request) {
	sv, iv, ok := jsonBody(r, []string{"app_name", "type", "bottommost_level_compaction", "trigger_time"},
		[]string{"target_level", "max_concurrent_running_count"})
	bad := func(msg string) { httpapi.Reply(w, http.StatusBadRequest, msg) }
	switch {
	case !ok:
		bad("invalid request structure")
	case sv["app_name"] == "":
		bad("app_name should not be empty")
	case sv["type"] != "once" && sv["type"] != "periodic":
		bad("type should ony be 'once' or 'periodic'")
	case iv["target_level"] < -1:
		bad("target_level should be >= -1")
	case sv["bottommost_level_compaction"] != "skip" && sv["bottommost_level_compaction"] != "force":
		bad("bottommost_level_compaction should ony be 'skip' or 'force'")
	case iv["max_concurrent_running_count"] < 0:
		bad("max_running_count should be >= 0")
	case sv["type"] == "periodic" && sv["trigger_time"] == "":
		bad("trigger_time should not be empty when type is periodic")
	default:
		typ := sv["type"]
		level := iv["target_level"]
		if level == 0 {
			httpapi.ReplyTables(w, http.StatusOK, httpapi.KV("", [2]string{"error", "ERR_INVALID_PARAMETERS"},
				[2]string{"hint_message", "invalid value '0', should be '-1 or >= 1'"}))
			return
		}
		trigger := sv["trigger_time"]
		if typ == "once" {
			trigger = strconv.FormatInt(s.cfg.Now().Unix(), 10)
		}
		envs := map[string]string{
			"manual_compact." + typ + ".target_level":                strconv.FormatInt(level, 10),
			"manual_compact." + typ + ".bottommost_level_compaction": sv["bottommost_level_compaction"],
			"manual_compact." + typ + ".trigger_time":                trigger,
		}
		if n := iv["max_concurrent_running_count"]; n > 0 {
			envs["manual_compact.max_concurrent_running_count"] = strconv.FormatInt(n, 10)
		}
		s.setEnvs(w, r, sv["app_name"], envs)
	}
}

func (s *Server) httpUsageScenario(w http.ResponseWriter, r *httpapi.Request) {
	sv, _, ok := jsonBody(r, []string{"app_name", "scenario"}, nil)
	switch {
	case !ok:
		httpapi.Reply(w, http.StatusBadRequest, "invalid request structure")
	case sv["app_name"] == "":
		httpapi.Reply(w, http.StatusBadRequest, "app_name should not be empty")
	case sv["scenario"] != "normal" && sv["scenario"] != "bulk_load":
		httpapi.Reply(w, http.StatusBadRequest, "scenario should ony be 'normal' or 'bulk_load'")
	default:
		s.setEnvs(w, r, sv["app_name"], map[string]string{"rocksdb.usage_scenario": sv["scenario"]})
	}
}

// Duplication does not exist in gopegasus: its endpoint answers as a Pegasus meta with it
// disabled does.

// httpDuplication serves /meta/app/duplication (http-api.md): the table's duplications,
// numbered from "1" in dupid order.
func (s *Server) httpDuplication(w http.ResponseWriter, r *httpapi.Request) {
	if !s.settings.DupEnabled.Get() {
		httpapi.Reply(w, http.StatusNotFound, "duplication is not enabled [FLAGS_duplication_enabled=false]")
		return
	}
	name, ok := r.Args.Get("name")
	if !ok {
		httpapi.Reply(w, http.StatusBadRequest, "name should not be empty")
		return
	}
	s.onLeader(w, r, func(context.Context) {
		t := s.m.state.availableTable(name)
		if t == nil {
			httpapi.Reply(w, http.StatusNotFound, wire.ErrAppNotExist.Name())
			return
		}
		if len(t.Dups) == 0 {
			httpapi.ReplyDoc(w, http.StatusOK, nil)
			return
		}
		out := map[string]any{"appid": t.AppID}
		for i, d := range t.Dups {
			states := map[string]any{}
			for j := range d.Partitions {
				p := s.m.progressOf(t, d, j)
				st := map[string]any{"confirmed_decree": p.Confirmed, "last_committed_decree": p.LastCommitted}
				if p.Lagging {
					st["lagging"] = true
				}
				states[itoa(j)] = st
			}
			dd := map[string]any{
				"create_ts":            time.UnixMilli(d.CreateMS).Format("2006-01-02 15:04:05"),
				"dupid":                d.ID,
				"fail_mode":            d.FailMode.String(),
				"partition_states":     states,
				"remote":               d.Remote,
				"remote_app_name":      d.RemoteApp,
				"remote_replica_count": d.RemoteReplicas,
				"status":               d.Status.String(),
			}
			if e := s.m.dups.stepErr[d.ID]; e != "" {
				dd["step_error"] = e // our own: why the leader's last step toward the follower failed
			}
			out[itoa(i+1)] = dd
		}
		httpapi.ReplyDoc(w, http.StatusOK, out)
	})
}

// metricEntities describes the meta server's metrics: the server (raft role, connections,
// and on the leader the cluster's tables, nodes and partition health) and each table.
func (s *Server) metricEntities(ctx context.Context) []metric.Entity {
	st := s.raft.status.Load()
	rm := s.rpc.Metrics()
	server := metric.Entity{Type: "server", ID: "server", Metrics: []metric.Metric{
		metric.GaugeOf("meta_is_leader", "Servers", "1 if this meta is the leader (primary meta)", b2i(st.isLeader)),
		metric.GaugeOf("meta_raft_term", "Rounds", "The metas' raft term", int64(st.term)),
		metric.GaugeOf("rpc_open_connections", "Sessions", "The open client connections", rm.OpenConnections),
		metric.CounterOf("rpc_connections", "Sessions", "The connections accepted", rm.TotalConnections),
		metric.CounterOf("rpc_requests", "Requests", "The RPC requests received", rm.Requests),
		metric.CounterOf("rpc_peer_connections", "Sessions", "The connections that authenticated as a member of the cluster", rm.PeerConnections),
		metric.CounterOf("rpc_peer_connections_refused", "Sessions", "The connections whose peer authentication failed (no or another cluster's secret)", rm.PeerConnectionsRefused),
		metric.CounterOf("rpc_peer_requests_refused", "Requests", "The internal requests (raft, config sync) refused because their connection was not an authenticated member", rm.PeerRequestsRefused),
		metric.CounterOf("raft_messages_refused", "Requests", "The raft messages dropped because their sender is not a member of the metas' group", s.raft.nonMember.Load()),
		metric.CounterOf("rpc_tls_connections", "Sessions", "The client connections whose TLS handshake succeeded", rm.TLSConnections),
		metric.CounterOf("rpc_tls_handshake_failures", "Sessions", "The TLS handshakes that failed (a bad, missing or untrusted client certificate among them)", rm.TLSHandshakeFailures),
		metric.CounterOf("rpc_plaintext_refused", "Requests", "The plaintext thrift connections and HTTP requests refused because TLS is mandatory", rm.PlaintextRefused),
	}}
	server.Metrics = append(server.Metrics, s.raft.tr.Metrics().ServerMetrics()...)
	server.Metrics = append(server.Metrics, authMetrics(s.rpc.AuthMetrics(), s.settings.ACL.Denied())...)
	out := []metric.Entity{server}
	_ = s.do(ctx, func() {
		if !st.isLeader || !s.follow() {
			return
		}
		s.m.refresh()
		var tables, partitions, unhealthy int64
		for _, t := range s.m.state.Tables {
			if t.Status != idl.AppStatusAvailable {
				continue
			}
			tables++
			partitions += int64(t.PartitionCount)
			h := s.m.tableHealth(t)
			unhealthy += int64(h.unhealthy)
			out = append(out, metric.Entity{Type: "table", ID: "table@" + itoa(t.AppID), Attrs: [][2]string{{"table_id", itoa(t.AppID)}},
				Metrics: []metric.Metric{
					metric.GaugeOf("partitions", "Partitions", "The table's partitions", int64(t.PartitionCount)),
					metric.GaugeOf("healthy_partitions", "Partitions", "Partitions with a primary and all their replicas", int64(h.fully)),
					metric.GaugeOf("unhealthy_partitions", "Partitions", "Partitions missing a primary or replicas", int64(h.unhealthy)),
					metric.GaugeOf("unwritable_partitions", "Partitions", "Partitions that cannot take writes", int64(h.writeUnhealthy)),
					metric.GaugeOf("unreadable_partitions", "Partitions", "Partitions without a primary", int64(h.readUnhealthy)),
				}})
		}
		alive := int64(len(s.m.aliveNodes()))
		out[0].Metrics = append(out[0].Metrics,
			metric.GaugeOf("tables", "Replicas", "The available tables", tables),
			metric.GaugeOf("partitions", "Partitions", "The partitions of the available tables", partitions),
			metric.GaugeOf("unhealthy_partitions", "Partitions", "Partitions missing a primary or replicas", unhealthy),
			metric.GaugeOf("alive_nodes", "Servers", "The alive replica servers", alive),
			metric.GaugeOf("dead_nodes", "Servers", "The replica servers known but not alive", int64(len(s.m.nodes))-alive))
	})
	return out
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
