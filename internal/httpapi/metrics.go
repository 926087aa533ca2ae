package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gopegasus/pegasus/internal/metric"
)

const metricsParams = "[with_metric_fields=field1,field2,...][&types=type1,type2,...][&ids=id1,id2,...]" +
	"[&attributes=attr1,value1,attr2,value2,...][&metrics=metric1,metric2,...][&detail=true|false]"

// allFields are the fields a metric can have, in output order.
var allFields = []string{"type", "name", "unit", "desc", "value", "p50", "p90", "p95", "p99", "p999"}

var defaultFields = []string{"name", "value", "p50", "p90", "p95", "p99", "p999"}

// metricsFilter is a parsed /metrics query. A nil list means no filter.
type metricsFilter struct {
	types, ids, names []string
	attrs             [][2]string
	fields            map[string]bool
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

func parseMetricsFilter(args Args) (*metricsFilter, string) {
	f := &metricsFilter{}
	var fields []string
	haveFields, detail := false, false
	for _, kv := range args {
		k, v := kv[0], kv[1]
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
			switch strings.ToLower(v) {
			case "true":
				detail = true
			case "false":
			default:
				return nil, "the value of detail should be a boolean value, i.e. true or false"
			}
		default:
			return nil, "unknown field " + k + "=" + v
		}
	}
	switch {
	case haveFields && len(fields) == 0, !haveFields && detail:
		fields = allFields
	case !haveFields:
		fields = defaultFields
	}
	f.fields = map[string]bool{}
	for _, x := range fields {
		f.fields[x] = true
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

// ordered is a JSON object whose keys keep their order.
type ordered []struct {
	k string
	v any
}

func (o *ordered) add(k string, v any) {
	*o = append(*o, struct {
		k string
		v any
	}{k, v})
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(marshal(kv.k))
		b.WriteByte(':')
		v, err := marshalErr(kv.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func replyMetricsError(w http.ResponseWriter, msg string) {
	o := ordered{}
	o.add("error_message", msg)
	Reply(w, http.StatusBadRequest, prettyJSON(o))
}

func prettyJSON(v any) string {
	raw, err := marshalErr(v)
	if err != nil {
		return "{}"
	}
	var out bytes.Buffer
	_ = json.Indent(&out, raw, "", "    ")
	return out.String()
}

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
	entities := []any{}
	for _, e := range b.opts.Metrics(r.Context()) {
		if !f.entity(&e) {
			continue
		}
		var ms []any
		for _, m := range e.Metrics {
			if !allows(f.names, m.Name) {
				continue
			}
			ms = append(ms, f.render(&m))
		}
		if len(ms) == 0 {
			continue
		}
		attrs := ordered{}
		for _, a := range e.Attrs {
			attrs.add(a[0], a[1])
		}
		o := ordered{}
		o.add("type", e.Type)
		o.add("id", e.ID)
		o.add("attributes", attrs)
		o.add("metrics", ms)
		entities = append(entities, o)
	}
	top := ordered{}
	top.add("cluster", b.opts.Cluster)
	top.add("role", b.opts.Role)
	top.add("host", host)
	top.add("port", b.opts.Port)
	top.add("timestamp_ns", b.opts.Now().UnixNano())
	top.add("entities", entities)
	Reply(w, http.StatusOK, prettyJSON(top))
}

func (f *metricsFilter) render(m *metric.Metric) ordered {
	o := ordered{}
	if f.fields["type"] {
		o.add("type", m.Kind.String())
	}
	if f.fields["name"] {
		o.add("name", m.Name)
	}
	if f.fields["unit"] {
		o.add("unit", m.Unit)
	}
	if f.fields["desc"] {
		o.add("desc", m.Desc)
	}
	if m.Kind == metric.Percentile {
		for i, q := range metric.QuantileNames {
			if f.fields[q] {
				o.add(q, m.P[i])
			}
		}
	} else if f.fields["value"] {
		o.add("value", m.Value)
	}
	return o
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
