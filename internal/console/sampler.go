package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The client operations the replica servers count and time per partition replica, by the
// prefix of their metric names (get_qps, get_latency_ns, ...): reads, then writes.
var (
	readOps  = [...]string{"get", "multi_get", "batch_get", "sortkey_count", "ttl", "scan"}
	writeOps = [...]string{"put", "remove", "multi_put", "multi_remove", "incr", "check_and_set", "check_and_mutate"}
	allOps   = slices.Concat(readOps[:], writeOps[:])
)

// numOps is the number of operations.
const numOps = len(readOps) + len(writeOps)

// isWrite reports whether allOps[i] is a write.
func isWrite(i int) bool { return i >= len(readOps) }

// Limits of one sampling round.
const (
	// maxScrapeBytes bounds the body read from one server.
	maxScrapeBytes = 128 << 20
	// maxParallel bounds the servers asked at once.
	maxParallel = 16
	// maxRequestTime bounds one request to a server.
	maxRequestTime = 5 * time.Second
)

// metricsQuery is the /metrics query of a round: the replica entities, with only the
// metrics the console shows.
var metricsQuery = func() string {
	names := []string{"rdb_disk_bytes", "manual_compaction_running"}
	for _, op := range allOps {
		names = append(names, op+"_qps", op+"_latency_ns")
	}
	return "types=replica&with_metric_fields=name,value,p99&metrics=" + strings.Join(names, ",")
}()

// compactQuery is metricsQuery with our /metrics extensions: no indentation, and no metric
// whose value is 0 (most of an idle server's), which the console reads as 0. It is a
// twentieth of the answer on a mostly idle server.
var compactQuery = metricsQuery + "&compact=true&omit_zero=true"

// plainRetry is how long the sampler asks a server that refused compactQuery (one that
// predates the extensions: its filter parser refuses unknown arguments) metricsQuery
// before trying compactQuery again (the server may have been upgraded).
const plainRetry = 10 * time.Minute

// metricSlot is where a metric of the console's query goes in a replicaSample.
type metricSlot struct {
	op   int // index in allOps, or -1
	kind int // slotDisk, slotCompacting, slotQPS, slotP99
}

const (
	slotDisk = iota
	slotCompacting
	slotQPS
	slotP99
)

// metricSlots maps the names of the console's metrics to their slots.
var metricSlots = func() map[string]metricSlot {
	m := map[string]metricSlot{
		"rdb_disk_bytes":            {-1, slotDisk},
		"manual_compaction_running": {-1, slotCompacting},
	}
	for i, op := range allOps {
		m[op+"_qps"] = metricSlot{i, slotQPS}
		m[op+"_latency_ns"] = metricSlot{i, slotP99}
	}
	return m
}()

// gpid names a partition.
type gpid struct{ app, pidx int32 }

// opStat is one operation's rate and p99 latency over a replica server's last window.
type opStat struct {
	qps float64
	p99 int64 // nanoseconds
}

// replicaSample is one partition replica's metrics, from one server's answer.
type replicaSample struct {
	ops        [numOps]opStat
	disk       int64
	compacting bool
}

// nodeSample is one replica server's answer in a round.
type nodeSample struct {
	err      string // why the server could not be read; "" when it was
	replicas map[gpid]replicaSample
}

// compactionCount is how many replicas of a table are in each manual compaction state,
// summed over the servers (their /replica/manual_compaction).
type compactionCount struct {
	Queuing  int64 `json:"queuing"`
	Running  int64 `json:"running"`
	Finished int64 `json:"finished"`
	Idle     int64 `json:"idle"`
}

// point is one sample of the charts: request rates and the worst p99 latency among the
// partition replicas that served requests of the kind in the window.
type point struct {
	T        int64   `json:"t"` // unix milliseconds
	ReadQPS  float64 `json:"read_qps"`
	WriteQPS float64 `json:"write_qps"`
	ReadP99  int64   `json:"read_p99_ns"`
	WriteP99 int64   `json:"write_p99_ns"`
}

// add folds one replica's sample into p.
func (p *point) add(r *replicaSample) {
	for i, s := range r.ops {
		if s.qps <= 0 {
			continue // a window without requests keeps stale percentiles
		}
		if isWrite(i) {
			p.WriteQPS += s.qps
			p.WriteP99 = max(p.WriteP99, s.p99)
		} else {
			p.ReadQPS += s.qps
			p.ReadP99 = max(p.ReadP99, s.p99)
		}
	}
}

// history keeps the last n points, oldest first.
type history []point

func (h history) push(p point, n int) history {
	if len(h) >= n {
		h = append(h[:0], h[len(h)-n+1:]...)
	}
	return append(h, p)
}

// samples is what the sampler gathered: the latest answer of every server and the charts'
// history. Guarded by the console's mutex.
type samples struct {
	at          time.Time // end of the last round; zero before the first
	nodes       map[string]*nodeSample
	metas       map[string]string // meta address -> probe error ("" reachable)
	compactions map[int32]*compactionCount
	cluster     history
	tables      map[int32]history
}

// run samples the replica servers every interval while this meta leads, from the moment it
// takes over, until ctx ends. A meta that stops leading forgets what it gathered.
func (c *Console) run(ctx context.Context) {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	var last time.Time // start of the last round; zero: none since this meta took over
	ticked := false
	for {
		changed := c.cfg.Source.LeaderChanged()
		if _, serving := c.cfg.Source.Leader(); !serving {
			c.forget()
			last = time.Time{}
		} else if ticked || last.IsZero() || time.Since(last) >= c.cfg.Interval/2 {
			// A burst of leadership changes does not make a burst of rounds.
			last = time.Now()
			c.round(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			ticked = true
		case <-changed:
			ticked = false
		}
	}
}

func (c *Console) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.s = samples{}
}

// round asks every alive replica server for its metrics (and the manual compaction state of
// the tables that have one requested), and every other meta whether it answers, then
// records what it got.
func (c *Console) round(ctx context.Context) {
	st, err := c.cfg.Source.ConsoleState(ctx)
	if err != nil {
		if errors.Is(err, ErrNotLeader) {
			c.forget()
		}
		return
	}
	var (
		mu          sync.Mutex
		wg          sync.WaitGroup
		sem         = make(chan struct{}, maxParallel)
		nodes       = map[string]*nodeSample{}
		metas       = map[string]string{}
		compactions = map[int32]*compactionCount{}
	)
	async := func(fn func()) {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			fn()
		})
	}
	compacted := compactionTables(st)
	for _, n := range st.Nodes {
		if !n.Alive {
			continue
		}
		async(func() {
			ns := c.scrapeNode(ctx, n.Addr)
			mu.Lock()
			nodes[n.Addr] = ns
			mu.Unlock()
		})
		for _, app := range compacted {
			async(func() {
				cc, err := c.compactionOf(ctx, n.Addr, app)
				if err != nil {
					return // the server may host nothing of the table
				}
				mu.Lock()
				defer mu.Unlock()
				sum := compactions[app]
				if sum == nil {
					sum = &compactionCount{}
					compactions[app] = sum
				}
				sum.Queuing += cc.Queuing
				sum.Running += cc.Running
				sum.Finished += cc.Finished
				sum.Idle += cc.Idle
			})
		}
	}
	for _, m := range st.Metas {
		if m == st.Leader {
			continue
		}
		async(func() {
			msg := ""
			if err := c.get(ctx, m, "/version", func(io.Reader) error { return nil }); err != nil {
				msg = err.Error()
			}
			mu.Lock()
			metas[m] = msg
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	now := c.cfg.Now()
	total := point{T: now.UnixMilli()}
	perTable := map[int32]*point{}
	for _, ns := range nodes {
		for id, r := range ns.replicas {
			total.add(&r)
			p := perTable[id.app]
			if p == nil {
				p = &point{T: total.T}
				perTable[id.app] = p
			}
			p.add(&r)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.mu.s
	if s.tables == nil {
		s.tables = map[int32]history{}
	}
	s.at, s.nodes, s.metas, s.compactions = now, nodes, metas, compactions
	s.cluster = s.cluster.push(total, c.cfg.History)
	live := map[int32]bool{}
	for _, t := range st.Tables {
		live[t.AppID] = true
		p := perTable[t.AppID]
		if p == nil {
			p = &point{T: total.T}
		}
		s.tables[t.AppID] = s.tables[t.AppID].push(*p, c.cfg.History)
	}
	for id := range s.tables {
		if !live[id] {
			delete(s.tables, id)
		}
	}
}

// compactionTables returns the app ids of the tables that have a manual compaction
// requested (a manual_compact.*.trigger_time env).
func compactionTables(st *State) []int32 {
	var out []int32
	for _, t := range st.Tables {
		for k := range t.Envs {
			if strings.HasPrefix(k, "manual_compact.") && strings.HasSuffix(k, ".trigger_time") {
				out = append(out, t.AppID)
				break
			}
		}
	}
	return out
}

// statusError is a server's answer other than 200.
type statusError struct {
	addr, pathQuery string
	code            int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("console: %s%s: status %d", e.addr, e.pathQuery, e.code)
}

// get makes one GET request to a server's HTTP API and hands a 200 answer's body to read;
// another status is a *statusError.
func (c *Console) get(ctx context.Context, addr, pathQuery string, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, min(c.cfg.Interval, maxRequestTime))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+pathQuery, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxScrapeBytes)
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, body)
		return &statusError{addr: addr, pathQuery: pathQuery, code: resp.StatusCode}
	}
	if err := read(body); err != nil {
		return fmt.Errorf("console: %s%s: %w", addr, pathQuery, err)
	}
	_, _ = io.Copy(io.Discard, body) // lets the connection be reused
	return nil
}

// metricsDoc is the part of a /metrics answer (http-api.md §4) the console reads.
type metricsDoc struct {
	Entities []struct {
		Type       string `json:"type"`
		Attributes struct {
			TableID     string `json:"table_id"`
			PartitionID string `json:"partition_id"`
		} `json:"attributes"`
		Metrics []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
			P99   float64 `json:"p99"`
		} `json:"metrics"`
	} `json:"entities"`
}

// scrapeNode reads the replica metrics of the server at addr: with compactQuery, or
// metricsQuery from a server that refused it within plainRetry.
func (c *Console) scrapeNode(ctx context.Context, addr string) *nodeSample {
	query := compactQuery
	c.mu.Lock()
	if until, ok := c.mu.plainUntil[addr]; ok && time.Now().Before(until) {
		query = metricsQuery
	} else if ok {
		delete(c.mu.plainUntil, addr)
	}
	c.mu.Unlock()
	ns, err := c.scrapeMetrics(ctx, addr, query)
	var se *statusError
	if query == compactQuery && errors.As(err, &se) && se.code == http.StatusBadRequest {
		c.mu.Lock()
		if c.mu.plainUntil == nil {
			c.mu.plainUntil = map[string]time.Time{}
		}
		c.mu.plainUntil[addr] = time.Now().Add(plainRetry)
		c.mu.Unlock()
		ns, err = c.scrapeMetrics(ctx, addr, metricsQuery)
	}
	if err != nil {
		ns.err = err.Error()
	}
	return ns
}

// scrapeMetrics reads the server's answer to /metrics?query. A metric the answer does not
// have is 0 (compactQuery leaves those out).
func (c *Console) scrapeMetrics(ctx context.Context, addr, query string) (*nodeSample, error) {
	ns := &nodeSample{replicas: map[gpid]replicaSample{}}
	err := c.get(ctx, addr, "/metrics?"+query, func(r io.Reader) error {
		var doc metricsDoc
		if err := json.NewDecoder(r).Decode(&doc); err != nil {
			return err
		}
		for _, e := range doc.Entities {
			app, err1 := strconv.ParseInt(e.Attributes.TableID, 10, 32)
			pidx, err2 := strconv.ParseInt(e.Attributes.PartitionID, 10, 32)
			if e.Type != "replica" || err1 != nil || err2 != nil {
				continue
			}
			var rs replicaSample
			for _, m := range e.Metrics {
				slot, ok := metricSlots[m.Name]
				if !ok {
					continue
				}
				switch slot.kind {
				case slotDisk:
					rs.disk = int64(m.Value)
				case slotCompacting:
					rs.compacting = m.Value > 0
				case slotQPS:
					rs.ops[slot.op].qps = m.Value
				case slotP99:
					rs.ops[slot.op].p99 = int64(m.P99)
				}
			}
			ns.replicas[gpid{int32(app), int32(pidx)}] = rs
		}
		return nil
	})
	return ns, err
}

// compactionOf reads how many replicas of table app on the server at addr are in each
// manual compaction state.
func (c *Console) compactionOf(ctx context.Context, addr string, app int32) (compactionCount, error) {
	var doc struct {
		Status compactionCount `json:"status"`
	}
	err := c.get(ctx, addr, "/replica/manual_compaction?app_id="+strconv.Itoa(int(app)), func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&doc)
	})
	return doc.Status, err
}
