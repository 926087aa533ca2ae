package httpapi

import (
	"context"
	"errors"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/metric"
)

// Options describes the server the builtin endpoints report on.
type Options struct {
	// Role is "meta" or "replica" (the /metrics role field).
	Role string
	// Version is reported by /version.
	Version string
	// StartTime is reported by /recentStartTime.
	StartTime time.Time
	// Settings backs /config, /configs and /updateConfig (default: an empty registry).
	Settings *config.Registry
	// Cluster is the cluster name reported by /metrics ("unknown" if empty).
	Cluster string
	// Port is the server's RPC and HTTP port, reported by /metrics.
	Port int
	// Metrics returns the server's metrics, for /metrics and /metrics/prometheus (default:
	// none). It is called once per request.
	Metrics func(ctx context.Context) []metric.Entity
	// Now is the clock of /metrics timestamps (default time.Now).
	Now func() time.Time
}

// builtins is the deps struct of the endpoints every server has.
type builtins struct {
	opts     Options
	profiler profiler
}

// New returns a Mux serving the endpoints every gopegasus server has (see the package doc);
// the server adds its own with Handle.
func New(opts Options) *Mux {
	if opts.Settings == nil {
		opts.Settings = config.NewRegistry()
	}
	if opts.Metrics == nil {
		opts.Metrics = func(context.Context) []metric.Entity { return nil }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Cluster == "" {
		opts.Cluster = "unknown"
	}
	b := &builtins{opts: opts}
	m := NewMux()
	m.Handle("/version", "", "Gets the server's version.", b.version)
	m.Handle("/recentStartTime", "", "Gets the time the server started.", b.startTime)
	m.Handle("/config", "name=<config_name>", "Gets one setting: its section, type, tags, description and value.", b.config)
	m.Handle("/configs", "", "Lists every setting.", b.configs)
	m.Handle("/updateConfig", "<key>=<new_value>", "Changes a mutable setting while the server runs.", b.updateConfig)
	m.Handle("/metrics", metricsParams, "Gets the server's metrics.", b.metrics)
	m.Handle("/metrics/prometheus", "", "Gets the server's metrics in the Prometheus text exposition format.", b.prometheus)
	b.addPprof(m)
	return m
}

// GitCommit returns the VCS revision the binary was built from, or "unknown".
func GitCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func (b *builtins) version(w http.ResponseWriter, _ *Request) {
	ReplyTables(w, http.StatusOK, KV("", [2]string{"Version", b.opts.Version}, [2]string{"GitCommit", GitCommit()}))
}

func (b *builtins) startTime(w http.ResponseWriter, _ *Request) {
	ReplyTables(w, http.StatusOK, KV("", [2]string{"RecentStartTime", b.opts.StartTime.Local().Format("2006-01-02 15:04:05")}))
}

var descriptorColumns = []string{"name", "section", "type", "tags", "description", "value"}

func descriptor(in config.Info) []string {
	tags := ""
	if in.Mutable {
		tags = "flag_tag::FT_MUTABLE"
	}
	return []string{in.Name, in.Section, in.Type.String(), tags, in.Description, in.Value}
}

func (b *builtins) config(w http.ResponseWriter, r *Request) {
	if !r.Args.Only("name") {
		Reply(w, http.StatusBadRequest, "")
		return
	}
	name, _ := r.Args.Get("name")
	if name == "" {
		Reply(w, http.StatusBadRequest, "name shouldn't be empty")
		return
	}
	in, ok := b.opts.Settings.Lookup(name)
	if !ok {
		Reply(w, http.StatusOK, "ERR_OBJECT_NOT_FOUND: '"+name+"' is not found")
		return
	}
	d := descriptor(in)
	t := Table{}
	for i, c := range descriptorColumns {
		t.Rows = append(t.Rows, []string{c, d[i]})
	}
	ReplyTables(w, http.StatusOK, t)
}

func (b *builtins) configs(w http.ResponseWriter, r *Request) {
	if len(r.Args) > 0 {
		Reply(w, http.StatusBadRequest, "")
		return
	}
	t := Table{Columns: descriptorColumns}
	for _, in := range b.opts.Settings.All() {
		t.Rows = append(t.Rows, descriptor(in))
	}
	ReplyTables(w, http.StatusOK, t)
}

func (b *builtins) updateConfig(w http.ResponseWriter, r *Request) {
	status := "ERR_OK"
	if len(r.Args) != 1 {
		status = "ERR_INVALID_PARAMETERS: there should be exactly one config to be updated once"
	} else {
		name, value := r.Args[0][0], r.Args[0][1]
		err := b.opts.Settings.Update(name, value)
		var ge *config.GroupError
		switch {
		case err == nil:
		case errors.Is(err, config.ErrNotFound):
			status = "ERR_OBJECT_NOT_FOUND: " + name + " is not found"
		case errors.Is(err, config.ErrNotMutable):
			status = "ERR_INVALID_PARAMETERS: " + name + " is not mutable"
		case errors.Is(err, config.ErrStringNotMutable):
			status = "ERR_INVALID_PARAMETERS: string modifications are not supported"
		case errors.Is(err, config.ErrInvalid):
			status = "ERR_INVALID_PARAMETERS: " + value + " is invalid"
		case errors.Is(err, config.ErrValidation):
			status = "ERR_INVALID_PARAMETERS: value validation failed"
		case errors.As(err, &ge):
			status = "ERR_INVALID_PARAMETERS: " + ge.Error()
		default:
			status = "ERR_INVALID_PARAMETERS: " + strings.TrimPrefix(err.Error(), "config: ")
		}
	}
	ReplyTables(w, http.StatusOK, KV("", [2]string{"update_status", status}))
}
