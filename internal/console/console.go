package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/httpapi"
	"github.com/gopegasus/pegasus/internal/metric"
)

// Defaults.
const (
	// DefaultInterval is how often the sampler reads the replica servers: their rates and
	// percentiles cover windows of this length (metric.Window), so sampling more often
	// would read the same numbers again.
	DefaultInterval = metric.Window
	// DefaultHistory is how many samples the charts keep: 10 minutes at DefaultInterval.
	DefaultHistory = 60
)

// Config configures a [Console].
type Config struct {
	// Source is the meta server the console shows. Required.
	Source Source
	// Self is this meta's address, the one the Source names as the leader when it leads.
	Self string
	// Interval is the time between two rounds of samples (default DefaultInterval).
	Interval time.Duration
	// History is how many rounds the charts keep (default DefaultHistory).
	History int
	// Logger receives the console's logs (default: discard).
	Logger *slog.Logger
	// Now is the clock of the samples (default time.Now).
	Now func() time.Time
	// Dial, if set, makes the sampler's connections to the servers (default: plain TCP);
	// a meta gives its peer dialer, so the samples are taken when clients must use TLS.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Console is the web console of a meta server: HTML pages and a JSON API (registered on
// the server's HTTP mux by [Console.Mount]) over the leader's state, and a sampler
// goroutine that reads the replica servers' metrics into a bounded history for the charts
// ([Console.Start], [Console.Close]). Safe for concurrent use.
type Console struct {
	cfg    Config
	client *http.Client
	page   page

	mu struct {
		sync.Mutex
		s samples
		// plainUntil holds the servers that refused the sampler's compact /metrics query,
		// with when to try it again.
		plainUntil map[string]time.Time
	}
	life struct {
		sync.Mutex
		cancel context.CancelFunc
		done   chan struct{}
	}
}

// page is the console's one HTML document, assembled from the embedded assets.
type page struct {
	raw, gz []byte
	etag    string
	csp     string
}

//go:embed assets
var assets embed.FS

// New returns a console over cfg.Source. It starts nothing: see [Console.Start].
func New(cfg Config) *Console {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the servers are reached directly, whatever the environment says
	tr.MaxIdleConnsPerHost = 2
	if cfg.Dial != nil {
		tr.DialContext = cfg.Dial
	}
	return &Console{cfg: cfg, client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}, page: buildPage()}
}

// buildPage inlines the stylesheet and the script into the HTML document, so a page is
// one request, and derives the Content-Security-Policy that allows exactly them.
func buildPage() page {
	read := func(name string) string {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			panic("console: embedded asset missing: " + name) // the build embeds them
		}
		return string(b)
	}
	css, js := read("console.css"), read("console.js")
	doc := read("console.html")
	doc = strings.Replace(doc, "/*console.css*/", css, 1)
	doc = strings.Replace(doc, "/*console.js*/", js, 1)
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	sum := sha256.Sum256([]byte(doc))
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write([]byte(doc))
	_ = zw.Close()
	return page{
		raw:  []byte(doc),
		gz:   gz.Bytes(),
		etag: `"` + hex.EncodeToString(sum[:8]) + `"`,
		csp: "default-src 'none'; connect-src 'self'; img-src data:; style-src " + hash(css) +
			"; script-src " + hash(js) + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	}
}

// Mount registers the console's pages and API on m.
func (c *Console) Mount(m *httpapi.Mux) {
	const pg = "The web console (HTML): "
	m.Handle("/console", "", pg+"the cluster: metas, replica servers, health, load charts.", c.servePage)
	m.Handle("/console/tables", "", pg+"the tables: partitions, health, QPS and latency per operation, size.", c.servePage)
	m.Handle("/console/table", "name=<app_name>", pg+"one table: each partition's primary, secondaries, ballot, health, size, QPS.", c.servePage)
	m.Handle("/console/operations", "", pg+"the long operations in progress.", c.servePage)
	m.Handle("/console/api/cluster", "", "The web console's data (JSON): metas, replica servers, summary, chart history.", c.apiCluster)
	m.Handle("/console/api/tables", "", "The web console's data (JSON): every table with its health, load and size.", c.apiTables)
	m.Handle("/console/api/table", "name=<app_name>", "The web console's data (JSON): one table and its partitions, chart history.", c.apiTable)
	m.Handle("/console/api/operations", "", "The web console's data (JSON): the long operations in progress.", c.apiOperations)
}

// Start starts the sampler goroutine; it runs until ctx ends or [Console.Close]. Call it
// at most once.
func (c *Console) Start(ctx context.Context) {
	c.life.Lock()
	defer c.life.Unlock()
	if c.life.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	c.life.cancel, c.life.done = cancel, make(chan struct{})
	done := c.life.done
	go func() {
		defer close(done)
		c.run(ctx)
	}()
}

// Close stops the sampler goroutine and waits until it has exited. It may be called more
// than once, and without Start.
func (c *Console) Close() {
	c.life.Lock()
	cancel, done := c.life.cancel, c.life.done
	c.life.Unlock()
	if done == nil {
		return
	}
	cancel()
	<-done
	c.client.CloseIdleConnections()
}

// atLeader reports whether this meta serves the request; otherwise it has answered: a 307
// to the leader (as the /meta queries are), or 503 while there is no serving leader.
func (c *Console) atLeader(w http.ResponseWriter, r *httpapi.Request) bool {
	leader, serving := c.cfg.Source.Leader()
	if serving {
		return true
	}
	if leader == "" || leader == c.cfg.Self {
		c.reply(w, r, http.StatusServiceUnavailable, "text/plain; charset=utf-8",
			[]byte("no meta server serves as the leader now; try again in a few seconds\n"))
		return false
	}
	loc := "http://" + leader + r.URL.Path
	if r.TLS != nil {
		loc = "https://" + leader + r.URL.Path
	}
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	c.reply(w, r, http.StatusTemporaryRedirect, "text/plain; charset=utf-8", nil)
	return false
}

// reply writes a whole answer, gzipped when the client takes it and it is worth it.
func (c *Console) reply(w http.ResponseWriter, r *httpapi.Request, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if len(body) > 1024 && acceptsGzip(r) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = b.Bytes()
		h.Set("Content-Encoding", "gzip")
		h.Set("Vary", "Accept-Encoding")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func acceptsGzip(r *httpapi.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(name) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func (c *Console) servePage(w http.ResponseWriter, r *httpapi.Request) {
	if !c.atLeader(w, r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", c.page.etag)
	h.Set("Content-Security-Policy", c.page.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Vary", "Accept-Encoding")
	if strings.Contains(r.Header.Get("If-None-Match"), c.page.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := c.page.raw
	if acceptsGzip(r) {
		body = c.page.gz
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// state answers the API request with fn's view of the leader's state and the samples, or
// with why there is none.
func (c *Console) state(w http.ResponseWriter, r *httpapi.Request, fn func(st *State, s *sampled) (any, int)) {
	if !c.atLeader(w, r) {
		return
	}
	st, err := c.cfg.Source.ConsoleState(r.Context())
	if err != nil {
		status := http.StatusServiceUnavailable
		if !errors.Is(err, ErrNotLeader) && r.Context().Err() == nil {
			status = http.StatusInternalServerError
			c.cfg.Logger.Warn("console state", "err", err)
		}
		c.reply(w, r, status, "text/plain; charset=utf-8", []byte(err.Error()+"\n"))
		return
	}
	v, status := fn(st, c.sampled())
	body, err := json.Marshal(v)
	if err != nil {
		c.reply(w, r, http.StatusInternalServerError, "text/plain; charset=utf-8", []byte(err.Error()+"\n"))
		return
	}
	c.reply(w, r, status, "application/json", body)
}

// sampled copies what the views need from the samples.
func (c *Console) sampled() *sampled {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.mu.s
	out := &sampled{at: s.at, nodes: s.nodes, metas: s.metas, compactions: s.compactions,
		cluster: history(append([]point(nil), s.cluster...)), tables: make(map[int32]history, len(s.tables))}
	for id, h := range s.tables {
		out.tables[id] = append(history(nil), h...)
	}
	return out
}

func (c *Console) apiCluster(w http.ResponseWriter, r *httpapi.Request) {
	c.state(w, r, func(st *State, s *sampled) (any, int) { return c.clusterView(st, s), http.StatusOK })
}

func (c *Console) apiTables(w http.ResponseWriter, r *httpapi.Request) {
	c.state(w, r, func(st *State, s *sampled) (any, int) { return c.tablesView(st, s), http.StatusOK })
}

func (c *Console) apiTable(w http.ResponseWriter, r *httpapi.Request) {
	name, _ := r.Args.Get("name")
	c.state(w, r, func(st *State, s *sampled) (any, int) {
		for i := range st.Tables {
			if st.Tables[i].Name == name {
				return c.tableDetail(st, s, &st.Tables[i]), http.StatusOK
			}
		}
		return map[string]string{"error": "no available table named " + strconv.Quote(name)}, http.StatusNotFound
	})
}

func (c *Console) apiOperations(w http.ResponseWriter, r *httpapi.Request) {
	c.state(w, r, func(st *State, s *sampled) (any, int) {
		return operationsView{Cluster: st.Cluster, Operations: c.operations(st, s), Sampling: c.sampling(s)}, http.StatusOK
	})
}
