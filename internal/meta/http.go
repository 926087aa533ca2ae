package meta

import (
	"encoding/json"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
)

// httpHandler serves the meta server's HTTP endpoints on the RPC port. For now these are the
// builtin ones every Pegasus server has, in Pegasus's shapes (see http-api.md §1): "/" lists
// the endpoints with their help, "/version" and "/recentStartTime". The /meta endpoints come
// with the HTTP API package; the redirect of their queries from a meta that is not the
// leader to the leader (http-api.md §2) is here already.
type httpHandler struct{ s *Server }

// Handler returns the server's HTTP handler (the one served on its port).
func (s *Server) Handler() http.Handler { return httpHandler{s} }

var httpHelp = [][2]string{ // sorted by path, as Pegasus lists them
	{"/", "List all supported calls."},
	{"/recentStartTime", "Gets the server start time."},
	{"/version", "Gets the server version."},
}

func (h httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Pegasus matches the path with its segments trimmed and empty ones dropped.
	var segs []string
	for _, seg := range strings.Split(r.URL.Path, "/") {
		if seg = strings.TrimSpace(seg); seg != "" {
			segs = append(segs, seg)
		}
	}
	path := "/" + strings.Join(segs, "/")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	if args, ok := metaQueries[strings.TrimPrefix(path, "/")]; ok && h.redirect(w, r, path, args) {
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

// metaQueries are the metadata queries only the leader answers, with the arguments each
// accepts (nil: any, ignored).
var metaQueries = map[string][]string{
	"meta/cluster": nil,
	"meta/apps":    {"detail"},
	"meta/app":     {"name", "detail"},
	"meta/nodes":   {"detail"},
}

// redirect answers a metadata query on a meta that is not the leader: 307 to the same path
// and arguments on the leader (host "invalid host_port" when it is unknown), as Pegasus does.
// A malformed query or an argument the path does not take is refused with 400 first. It
// reports whether it answered.
func (h httpHandler) redirect(w http.ResponseWriter, r *http.Request, path string, allowed []string) bool {
	args, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("failed to parse request: ERR_INVALID_PARAMETERS: " + err.Error()))
		return true
	}
	if allowed != nil {
		for _, kv := range args {
			if !slices.Contains(allowed, kv[0]) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusBadRequest)
				return true
			}
		}
	}
	st := h.s.raft.status.Load()
	if st.isLeader {
		return false
	}
	leader := st.leader
	if leader == "" {
		leader = "invalid host_port"
	}
	loc := "http://" + leader + path
	for i, kv := range args {
		if i == 0 {
			loc += "?"
		} else {
			loc += "&"
		}
		loc += kv[0] + "=" + kv[1]
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true
}

// parseQuery splits a raw query string as Pegasus does (http-api.md §0): the whole string is
// percent-decoded first ('+' stays), then split on '&' (pieces trimmed, empty ones skipped)
// and on the first '='. A key given twice with '=' is an error; a repeated bare key is
// ignored. Arguments keep their order.
func parseQuery(raw string) ([][2]string, error) {
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	seen := map[string]bool{}
	for _, piece := range strings.Split(dec, "&") {
		piece = strings.TrimSpace(piece)
		if piece == "" {
			continue
		}
		k, v, hasValue := strings.Cut(piece, "=")
		if seen[k] {
			if hasValue {
				return nil, &duplicateError{k}
			}
			continue
		}
		seen[k] = true
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

type duplicateError struct{ key string }

func (e *duplicateError) Error() string { return "duplicate parameter: " + e.key }
