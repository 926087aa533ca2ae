package replica

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/gopegasus/pegasus/internal/httpapi"
)

// httpAPI is the replica server's HTTP API (http-api.md §1, §3, §4): the builtins and
// /replica/data_version, /replica/manual_compaction and /replica/duplication.
func (s *Server) httpAPI() *httpapi.Mux {
	port := 0
	if _, p, err := net.SplitHostPort(s.addr); err == nil {
		port, _ = strconv.Atoi(p)
	}
	m := httpapi.New(httpapi.Options{
		Role: "replica", Version: s.cfg.Version, StartTime: s.started, Settings: s.settings.Registry(),
		Cluster: s.settings.ClusterName.Get(), Port: port, Metrics: s.metricEntities,
	})
	m.Handle("/replica/data_version", "app_id=<app_id>", "Gets the data version of each replica of a table on this server.", s.httpDataVersion)
	m.Handle("/replica/manual_compaction", "app_id=<app_id>", "Counts the replicas of a table on this server in each manual compaction state.", s.httpManualCompaction)
	m.Handle("/replica/duplication", "appid=<appid>", "Gets the duplication progress of a table's primaries on this server.", s.httpDuplication)
	return m
}

// appIDArg reads an id argument as Pegasus does (C strtol, base 0, int32, >= 0); it answers
// the request itself when the argument is missing or bad.
func appIDArg(w http.ResponseWriter, r *httpapi.Request, key string) (int32, string, bool) {
	raw, ok := r.Args.Get(key)
	if !ok {
		httpapi.Reply(w, http.StatusBadRequest, key+" should not be empty")
		return 0, "", false
	}
	s := strings.TrimSpace(raw)
	n, err := strconv.ParseInt(s, 0, 32)
	if err != nil || n < 0 || strings.ContainsAny(s, "_") || strings.HasPrefix(s, "0b") || strings.HasPrefix(s, "0o") {
		httpapi.Reply(w, http.StatusBadRequest, "invalid "+key+"="+raw)
		return 0, "", false
	}
	return int32(n), raw, true
}

func (s *Server) partitionsOf(app int32) []*partition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*partition
	for pid, p := range s.parts {
		if pid.AppID == app {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) httpDataVersion(w http.ResponseWriter, r *httpapi.Request) {
	app, raw, ok := appIDArg(w, r, "app_id")
	if !ok {
		return
	}
	parts := s.partitionsOf(app)
	if len(parts) == 0 {
		httpapi.Reply(w, http.StatusNotFound, "app_id="+raw+" not found")
		return
	}
	out := map[string]map[string]string{}
	for _, p := range parts {
		db, release := p.readDB()
		v := db.DataVersion()
		release()
		out[strconv.Itoa(int(p.pid.PartitionIndex))] = map[string]string{"data_version": strconv.FormatUint(uint64(v), 10)}
	}
	httpapi.ReplyDoc(w, http.StatusOK, out)
}

func (s *Server) httpManualCompaction(w http.ResponseWriter, r *httpapi.Request) {
	app, _, ok := appIDArg(w, r, "app_id")
	if !ok {
		return
	}
	counts := map[string]int{"idle": 0, "queuing": 0, "running": 0, "finished": 0}
	for _, p := range s.partitionsOf(app) {
		counts[p.compactionState()]++
	}
	httpapi.ReplyDoc(w, http.StatusOK, map[string]any{"status": counts})
}

// httpDuplication serves /replica/duplication (http-api.md §3): the duplications this
// server's primaries of the table ship.
func (s *Server) httpDuplication(w http.ResponseWriter, r *httpapi.Request) {
	if !s.settings.DupEnabled.Get() {
		httpapi.Reply(w, http.StatusNotFound, fmt.Sprintf("duplication is not enabled [FLAGS_duplication_enabled=%t]", false))
		return
	}
	app, _, ok := appIDArg(w, r, "appid")
	if !ok {
		return
	}
	primaries := 0
	for _, p := range s.partitionsOf(app) {
		if p.isLeader.Load() {
			primaries++
		}
	}
	if primaries == 0 {
		httpapi.Reply(w, http.StatusNotFound, fmt.Sprintf("no primary for app [appid=%d]", app))
		return
	}
	out := s.dups.status(app)
	if len(out) == 0 {
		httpapi.Reply(w, http.StatusNotFound, fmt.Sprintf("no duplication assigned for app [appid=%d]", app))
		return
	}
	httpapi.ReplyDoc(w, http.StatusOK, out)
}
