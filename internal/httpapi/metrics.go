package httpapi

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gopegasus/pegasus/internal/metric"
)

const metricsParams = "[with_metric_fields=field1,field2,...][&types=type1,type2,...][&ids=id1,id2,...]" +
	"[&attributes=attr1,value1,attr2,value2,...][&metrics=metric1,metric2,...][&detail=true|false]" +
	"[&compact=true|false][&omit_zero=true|false]"

// allFields are the fields a metric can have, in output order.
var allFields = []string{"type", "name", "unit", "desc", "value", "p50", "p90", "p95", "p99", "p999"}

var defaultFields = []string{"name", "value", "p50", "p90", "p95", "p99", "p999"}

// metricsFilter is a parsed /metrics query. A nil list means no filter.
type metricsFilter struct {
	types, ids, names []string
	// nameSet holds names, looked up for every metric of every entity.
	nameSet map[string]bool
	attrs   [][2]string
	fields  metricFields
	// compact and omitZero are our extensions (compact=true, omit_zero=true): no
	// indentation, and no metric whose value is 0.
	compact, omitZero bool
}

// metricFields are the fields of a metric a query asks for.
type metricFields struct {
	typ, name, unit, desc, value bool
	p                            [len(metric.QuantileNames)]bool
}

func (mf *metricFields) set(field string) {
	switch field {
	case "type":
		mf.typ = true
	case "name":
		mf.name = true
	case "unit":
		mf.unit = true
	case "desc":
		mf.desc = true
	case "value":
		mf.value = true
	default:
		if i := slices.Index(metric.QuantileNames[:], field); i >= 0 {
			mf.p[i] = true
		}
	}
}

func splitCSV(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseBool parses the value of a boolean argument as Pegasus does detail's.
func parseBool(k, v string) (bool, string) {
	switch strings.ToLower(v) {
	case "true":
		return true, ""
	case "false":
		return false, ""
	}
	return false, "the value of " + k + " should be a boolean value, i.e. true or false"
}

func parseMetricsFilter(args Args) (*metricsFilter, string) {
	f := &metricsFilter{}
	var fields []string
	haveFields, detail := false, false
	for _, kv := range args {
		k, v := kv[0], kv[1]
		var msg string
		switch k {
		case "types":
			f.types = splitCSV(v)
		case "ids":
			f.ids = splitCSV(v)
		case "metrics":
			f.names = splitCSV(v)
		case "attributes":
			items := splitCSV(v)
			if len(items)%2 != 0 {
				return nil, "the number of arguments for attributes should be even, since each attribute name always pairs with a value"
			}
			f.attrs = [][2]string{}
			for i := 0; i < len(items); i += 2 {
				f.attrs = append(f.attrs, [2]string{items[i], items[i+1]})
			}
		case "with_metric_fields":
			haveFields = true
			fields = splitCSV(v)
		case "detail":
			detail, msg = parseBool(k, v)
		case "compact":
			f.compact, msg = parseBool(k, v)
		case "omit_zero":
			f.omitZero, msg = parseBool(k, v)
		default:
			return nil, "unknown field " + k + "=" + v
		}
		if msg != "" {
			return nil, msg
		}
	}
	switch {
	case haveFields && len(fields) == 0, !haveFields && detail:
		fields = allFields
	case !haveFields:
		fields = defaultFields
	}
	for _, x := range fields {
		f.fields.set(x)
	}
	if len(f.names) > 0 {
		f.nameSet = map[string]bool{}
		for _, n := range f.names {
			f.nameSet[n] = true
		}
	}
	return f, ""
}

// allows reports whether list (nil or empty: no filter) contains x.
func allows(list []string, x string) bool { return len(list) == 0 || slices.Contains(list, x) }

func (f *metricsFilter) entity(e *metric.Entity) bool {
	if !allows(f.types, e.Type) || !allows(f.ids, e.ID) {
		return false
	}
	if len(f.attrs) == 0 {
		return true
	}
	for _, want := range f.attrs {
		for _, have := range e.Attrs {
			if have == want {
				return true
			}
		}
	}
	return false
}

// metric reports whether f selects the metric named name.
func (f *metricsFilter) metric(name string) bool { return f.nameSet == nil || f.nameSet[name] }

// isZero reports whether m's value is 0: all of its percentiles, for a Percentile.
func isZero(m *metric.Metric) bool {
	if m.Kind == metric.Percentile {
		return m.P == [len(m.P)]int64{}
	}
	return m.Value == 0
}

// jsonWriter appends JSON to b as encoding/json's Marshal (HTML characters unescaped) then
// json.Indent with four spaces would, or compact. Objects and arrays: open, then elem or
// key before each member, then close with the number of members.
type jsonWriter struct {
	b       []byte
	compact bool
	depth   int
}

func (w *jsonWriter) newline() {
	if w.compact {
		return
	}
	w.b = append(w.b, '\n')
	for range w.depth {
		w.b = append(w.b, "    "...)
	}
}

func (w *jsonWriter) open(c byte) {
	w.b = append(w.b, c)
	w.depth++
}

func (w *jsonWriter) close(c byte, members int) {
	w.depth--
	if members > 0 {
		w.newline()
	}
	w.b = append(w.b, c)
}

// elem starts member i of an array.
func (w *jsonWriter) elem(i int) {
	if i > 0 {
		w.b = append(w.b, ',')
	}
	w.newline()
}

// key starts member i of an object, named k.
func (w *jsonWriter) key(i int, k string) {
	w.elem(i)
	w.str(k)
	w.b = append(w.b, ':')
	if !w.compact {
		w.b = append(w.b, ' ')
	}
}

func (w *jsonWriter) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			w.b = append(w.b, marshal(s)...) // escapes, and invalid UTF-8, as encoding/json
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

func (w *jsonWriter) int(v int64) { w.b = strconv.AppendInt(w.b, v, 10) }

// metricsHeader is the top of a /metrics answer.
type metricsHeader struct {
	cluster, role, host string
	port                int
	timestampNS         int64
}

// appendMetrics appends the /metrics answer of entities under f to dst: Pegasus's JSON,
// pretty-printed with four spaces unless f.compact. An entity none of whose metrics f
// selects is left out; with f.omitZero, an entity whose selected metrics are all 0 stays,
// with no metrics, so that a reader still learns it exists.
func appendMetrics(dst []byte, h *metricsHeader, entities []metric.Entity, f *metricsFilter) []byte {
	w := &jsonWriter{b: dst, compact: f.compact}
	w.open('{')
	w.key(0, "cluster")
	w.str(h.cluster)
	w.key(1, "role")
	w.str(h.role)
	w.key(2, "host")
	w.str(h.host)
	w.key(3, "port")
	w.int(int64(h.port))
	w.key(4, "timestamp_ns")
	w.int(h.timestampNS)
	w.key(5, "entities")
	w.open('[')
	n := 0
	for i := range entities {
		e := &entities[i]
		if !f.entity(e) || !slices.ContainsFunc(e.Metrics, func(m metric.Metric) bool { return f.metric(m.Name) }) {
			continue
		}
		w.elem(n)
		n++
		w.open('{')
		w.key(0, "type")
		w.str(e.Type)
		w.key(1, "id")
		w.str(e.ID)
		w.key(2, "attributes")
		w.open('{')
		for j, a := range e.Attrs {
			w.key(j, a[0])
			w.str(a[1])
		}
		w.close('}', len(e.Attrs))
		w.key(3, "metrics")
		w.open('[')
		nm := 0
		for j := range e.Metrics {
			m := &e.Metrics[j]
			if !f.metric(m.Name) || f.omitZero && isZero(m) {
				continue
			}
			w.elem(nm)
			nm++
			f.appendMetric(w, m)
		}
		w.close(']', nm)
		w.close('}', 4)
	}
	w.close(']', n)
	w.close('}', 6)
	return w.b
}

// appendMetric writes one metric's selected fields.
func (f *metricsFilter) appendMetric(w *jsonWriter, m *metric.Metric) {
	w.open('{')
	n := 0
	field := func(k string) {
		w.key(n, k)
		n++
	}
	if f.fields.typ {
		field("type")
		w.str(m.Kind.String())
	}
	if f.fields.name {
		field("name")
		w.str(m.Name)
	}
	if f.fields.unit {
		field("unit")
		w.str(m.Unit)
	}
	if f.fields.desc {
		field("desc")
		w.str(m.Desc)
	}
	if m.Kind == metric.Percentile {
		for i, q := range metric.QuantileNames {
			if f.fields.p[i] {
				field(q)
				w.int(m.P[i])
			}
		}
	} else if f.fields.value {
		field("value")
		w.int(m.Value)
	}
	w.close('}', n)
}

func replyMetricsError(w http.ResponseWriter, msg string) {
	jw := &jsonWriter{}
	jw.open('{')
	jw.key(0, "error_message")
	jw.str(msg)
	jw.close('}', 1)
	Reply(w, http.StatusBadRequest, string(jw.b))
}

// metricsBufs recycles the buffers /metrics answers are written into (some MB on a server
// with thousands of replicas, asked every 10 s by the console).
var metricsBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledMetricsBuf bounds the buffers kept for reuse.
const maxPooledMetricsBuf = 64 << 20

func (b *builtins) metrics(w http.ResponseWriter, r *Request) {
	if r.Method != http.MethodGet {
		replyMetricsError(w, "please use 'GET' method while querying for metrics")
		return
	}
	f, msg := parseMetricsFilter(r.Args)
	if msg != "" {
		replyMetricsError(w, msg)
		return
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	h := &metricsHeader{cluster: b.opts.Cluster, role: b.opts.Role, host: host, port: b.opts.Port,
		timestampNS: b.opts.Now().UnixNano()}
	buf := metricsBufs.Get().(*[]byte)
	*buf = appendMetrics((*buf)[:0], h, b.opts.Metrics(r.Context()), f)
	replyBytes(w, http.StatusOK, *buf)
	if cap(*buf) <= maxPooledMetricsBuf {
		metricsBufs.Put(buf)
	}
}

// prometheus serves the metrics in the Prometheus text exposition format (version 0.0.4).
// A metric becomes the family pegasus_<entity type>_<name> (counters end in _total),
// labelled with the entity's attributes; a percentile becomes a gauge family with a
// quantile label.
func (b *builtins) prometheus(w http.ResponseWriter, r *Request) {
	type family struct {
		help, typ string
		lines     []string
	}
	fams := map[string]*family{}
	for _, e := range b.opts.Metrics(r.Context()) {
		var labels []string
		for _, a := range e.Attrs {
			labels = append(labels, promName(a[0])+`="`+promEscape(a[1], true)+`"`)
		}
		for _, m := range e.Metrics {
			name := promName("pegasus_" + e.Type + "_" + m.Name)
			typ := "gauge"
			if m.Kind == metric.Counter {
				typ = "counter"
				if !strings.HasSuffix(name, "_total") {
					name += "_total"
				}
			}
			fam := fams[name]
			if fam == nil {
				help := m.Desc
				if m.Unit != "" {
					help += " (" + m.Unit + ")"
				}
				fam = &family{help: help, typ: typ}
				fams[name] = fam
			}
			if m.Kind != metric.Percentile {
				fam.lines = append(fam.lines, name+promLabels(labels)+" "+strconv.FormatInt(m.Value, 10))
				continue
			}
			for i, q := range metric.Quantiles {
				ls := append(slices.Clip(labels), `quantile="`+strconv.FormatFloat(q, 'g', -1, 64)+`"`)
				fam.lines = append(fam.lines, name+promLabels(ls)+" "+strconv.FormatInt(m.P[i], 10))
			}
		}
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var out strings.Builder
	for _, n := range names {
		f := fams[n]
		fmt.Fprintf(&out, "# HELP %s %s\n# TYPE %s %s\n", n, promEscape(f.help, false), n, f.typ)
		for _, l := range f.lines {
			out.WriteString(l)
			out.WriteByte('\n')
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(out.Len()))
	h["Date"] = nil
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(out.String()))
}

func promLabels(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return "{" + strings.Join(ls, ",") + "}"
}

// promName replaces what a Prometheus name may not contain with '_'.
func promName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

func promEscape(s string, quote bool) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "\n", `\n`)
	if quote {
		s = strings.ReplaceAll(s, `"`, `\"`)
	}
	return s
}
