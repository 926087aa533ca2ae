package meta

import (
	"encoding/json"
	"net/http"
	"runtime/debug"
	"strings"
)

// httpHandler serves the meta server's HTTP endpoints on the RPC port. For now these are the
// builtin ones every Pegasus server has, in Pegasus's shapes (see http-api.md §1): "/" lists
// the endpoints with their help, "/version" and "/recentStartTime". The /meta endpoints come
// with the HTTP API package.
type httpHandler struct{ s *Server }

// Handler returns the server's HTTP handler (the one served on its port).
func (s *Server) Handler() http.Handler { return httpHandler{s} }

var httpHelp = [][2]string{ // sorted by path, as Pegasus lists them
	{"/", "List all supported calls."},
	{"/recentStartTime", "Gets the server start time."},
	{"/version", "Gets the server version."},
}

func (h httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := "/" + strings.Trim(r.URL.Path, "/ ")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	switch path {
	case "/":
		writeTable(w, httpHelp)
	case "/version":
		writeTable(w, [][2]string{{"Version", h.s.cfg.Version}, {"GitCommit", gitCommit()}})
	case "/recentStartTime":
		writeTable(w, [][2]string{{"RecentStartTime", h.s.m.startTime.Local().Format("2006-01-02 15:04:05")}})
	default:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`service not found for "` + strings.TrimPrefix(path, "/") + `"`))
	}
}

// writeTable writes a Pegasus key/value table: a compact JSON object of strings in the given
// order, then a newline, as text/plain.
func writeTable(w http.ResponseWriter, rows [][2]string) {
	var b strings.Builder
	b.WriteByte('{')
	for i, kv := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv[0])
		v, _ := json.Marshal(kv[1])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(b.String()))
}

// gitCommit returns the VCS revision the binary was built from, or "unknown".
func gitCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
