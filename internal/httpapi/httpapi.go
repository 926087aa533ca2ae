// Package httpapi serves the HTTP API of gopegasus servers with Apache Pegasus's paths,
// parameters, status codes and response shapes, so the tools written for Pegasus work
// against our servers.
//
// A [Mux] parses requests the way Pegasus does (normalised path, query percent-decoded
// before it is split, duplicate parameters refused) and answers unknown paths with
// Pegasus's 404. [New] returns a Mux with the endpoints every server has: "/" (the list of
// endpoints), /version, /recentStartTime, /config, /configs, /updateConfig (over a
// [config.Registry]), /metrics (Pegasus JSON; our extensions compact=true and
// omit_zero=true make it small for the console), /metrics/prometheus (Prometheus text
// exposition of the same metrics) and /pprof/* (Go's profiles). Servers add their own
// endpoints with [Mux.Handle].
//
// Responses are text/plain with a Content-Length, whatever the body, as Pegasus sends them.
package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Args are a request's query arguments in the order they came, each key once. A bare key
// (no '=') has the value "".
type Args [][2]string

// Get returns the value of key k and whether it was given.
func (a Args) Get(k string) (string, bool) {
	for _, kv := range a {
		if kv[0] == k {
			return kv[1], true
		}
	}
	return "", false
}

// Only reports whether every argument's key is one of keys.
func (a Args) Only(keys ...string) bool {
	for _, kv := range a {
		if !slices.Contains(keys, kv[0]) {
			return false
		}
	}
	return true
}

// DuplicateError is the parse error of a query giving a key twice with '='.
type DuplicateError struct{ Key string }

func (e *DuplicateError) Error() string { return "duplicate parameter: " + e.Key }

// ParseQuery splits a raw query string as Pegasus does: the whole string is percent-decoded
// first ('+' stays a plus), then split on '&' (pieces trimmed, empty ones skipped) and on
// the first '='. A key given twice with '=' is a *[DuplicateError]; a repeated bare key is
// ignored (the first occurrence wins).
func ParseQuery(raw string) (Args, error) {
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return nil, err
	}
	var out Args
	seen := map[string]bool{}
	for _, piece := range strings.Split(dec, "&") {
		piece = strings.TrimSpace(piece)
		if piece == "" {
			continue
		}
		k, v, hasValue := strings.Cut(piece, "=")
		if seen[k] {
			if hasValue {
				return nil, &DuplicateError{k}
			}
			continue
		}
		seen[k] = true
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// NormalizePath is the path handlers are matched against: segments trimmed of blanks,
// empty ones dropped, joined by '/', with no leading '/' ("//meta/apps/" is "meta/apps").
func NormalizePath(p string) string {
	var segs []string
	for _, seg := range strings.Split(p, "/") {
		if seg = strings.TrimSpace(seg); seg != "" {
			segs = append(segs, seg)
		}
	}
	return strings.Join(segs, "/")
}

// Request is what a handler gets: the HTTP request, its normalised path and its arguments.
type Request struct {
	*http.Request
	// Path is the normalised path, without a leading '/'.
	Path string
	Args Args
}

// HandlerFunc serves one endpoint.
type HandlerFunc func(w http.ResponseWriter, r *Request)

type route struct {
	params, help string
	h            HandlerFunc
}

// Mux routes requests to endpoints by normalised path. Safe for concurrent use; register
// endpoints before serving.
type Mux struct {
	mu     sync.RWMutex
	routes map[string]route
	// before, if set, runs before every handler and reports whether it answered.
	before func(w http.ResponseWriter, r *Request) bool
}

// NewMux returns a Mux whose only endpoint is "/", the list of endpoints.
func NewMux() *Mux {
	m := &Mux{routes: map[string]route{}}
	m.Handle("/", "", "Lists every endpoint this server has, with its parameters.", m.serveList)
	return m
}

// Handle registers an endpoint: path as listed by "/" (e.g. "/meta/app"), the parameters it
// takes in Pegasus's help syntax (e.g. "name=<app_name>[&detail]", or ""), a sentence of
// help, and the handler.
func (m *Mux) Handle(path, params, help string, h HandlerFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes[NormalizePath(path)] = route{params: params, help: help, h: h}
}

// Before installs a hook run before every handler (after parsing); it reports whether it
// answered the request itself. The meta server redirects its /meta queries with it.
func (m *Mux) Before(fn func(w http.ResponseWriter, r *Request) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.before = fn
}

// ServeHTTP implements http.Handler.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		// Pegasus's parser knows only GET and POST and drops the connection otherwise.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		Reply(w, http.StatusBadRequest, "")
		return
	}
	args, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		Reply(w, http.StatusBadRequest, "failed to parse request: ERR_INVALID_PARAMETERS: "+err.Error())
		return
	}
	req := &Request{Request: r, Path: NormalizePath(r.URL.Path), Args: args}
	m.mu.RLock()
	rt, ok := m.routes[req.Path]
	before := m.before
	m.mu.RUnlock()
	if before != nil && before(w, req) {
		return
	}
	if !ok {
		Reply(w, http.StatusNotFound, `service not found for "`+req.Path+`"`)
		return
	}
	rt.h(w, req)
}

func (m *Mux) serveList(w http.ResponseWriter, _ *Request) {
	m.mu.RLock()
	rows := make([][2]string, 0, len(m.routes))
	for p, rt := range m.routes {
		help := rt.help
		switch {
		case p == "metrics":
			help = rt.params + help
		case rt.params != "":
			help = rt.params + ". " + help
		}
		rows = append(rows, [2]string{"/" + p, help})
	}
	m.mu.RUnlock()
	slices.SortFunc(rows, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	ReplyTables(w, http.StatusOK, KV("", rows...))
}

// Reply writes a whole response as Pegasus does: text/plain, a Content-Length and no other
// header.
func Reply(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h["Date"] = nil
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// replyBytes is [Reply] with a body in a byte slice, which it does not keep.
func replyBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h["Date"] = nil
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Table is one table of Pegasus's "table" encoding: every scalar a string, rows in order.
// A key/value table has no Columns and two-element rows; a column table's rows are keyed by
// their first column, which is repeated inside the row.
type Table struct {
	Name    string
	Columns []string
	Rows    [][]string
}

// KV returns a key/value table.
func KV(name string, rows ...[2]string) Table {
	t := Table{Name: name}
	for _, r := range rows {
		t.Rows = append(t.Rows, []string{r[0], r[1]})
	}
	return t
}

// EncodeTables renders tables in Pegasus's table encoding: compact JSON, a named table
// nested under its name, an unnamed one as the top-level object; a key/value table without
// rows is left out, a column table without rows is {}. A newline follows.
func EncodeTables(tables ...Table) []byte {
	var b bytes.Buffer
	str := func(s string) { b.Write(marshal(s)) }
	if len(tables) == 1 && tables[0].Name == "" {
		writeTable(&b, tables[0], str)
		b.WriteByte('\n')
		return b.Bytes()
	}
	b.WriteByte('{')
	first := true
	for _, t := range tables {
		if t.Columns == nil && len(t.Rows) == 0 {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		str(t.Name)
		b.WriteByte(':')
		writeTable(&b, t, str)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func writeTable(b *bytes.Buffer, t Table, str func(string)) {
	b.WriteByte('{')
	for i, row := range t.Rows {
		if i > 0 {
			b.WriteByte(',')
		}
		str(row[0])
		b.WriteByte(':')
		if t.Columns == nil {
			str(row[1])
			continue
		}
		b.WriteByte('{')
		for j, col := range t.Columns {
			if j > 0 {
				b.WriteByte(',')
			}
			str(col)
			b.WriteByte(':')
			if j < len(row) {
				str(row[j])
			} else {
				str("")
			}
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
}

// ReplyTables answers with tables in Pegasus's table encoding.
func ReplyTables(w http.ResponseWriter, status int, tables ...Table) {
	Reply(w, status, string(EncodeTables(tables...)))
}

// ReplyDoc answers with v in Pegasus's "doc" encoding: real JSON types, object keys sorted
// (Go's encoding/json sorts map keys), compact, no trailing newline.
func ReplyDoc(w http.ResponseWriter, status int, v any) {
	raw, err := marshalErr(v)
	if err != nil {
		Reply(w, http.StatusInternalServerError, err.Error())
		return
	}
	Reply(w, status, string(raw))
}

// marshalErr is json.Marshal without HTML escaping ('<' and '&' stay as they are, as in
// Pegasus's answers).
func marshalErr(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func marshal(v any) []byte {
	raw, _ := marshalErr(v)
	return raw
}
