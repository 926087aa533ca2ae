// Command overload measures how the onebox behaves past the load it can serve: its memory,
// what it sheds, and the latency of a well-behaved client beside the overload.
//
//	go build -o /tmp/pegasus ./cmd/pegasus
//	go run ./bench/overload --pegasus /tmp/pegasus
//
// For each level it starts a fresh `pegasus onebox` (a child process, so that its memory is
// its own) on free loopback ports and:
//
//   - calibrates once, on the first onebox: writers (one client each, so one connection
//     each) send values of --value-size bytes in a closed loop, 8, 16, 32 of them; the
//     saturation rate is the best throughput seen;
//   - offers k times that rate, open loop (each write is sent on its schedule, whatever the
//     earlier ones became, with a --timeout deadline; at most --max-inflight are
//     outstanding, beyond which the generator counts the write as not sent), spread over
//     --clients clients, for --duration, for k = 0 (no load), 1, 2, 4;
//   - meanwhile a probe client, with its own connection, reads one small record every 5 ms
//     and records each read's latency;
//   - samples the onebox's resident memory (VmRSS) every 100 ms.
//
// It prints, per level: the offered and acknowledged writes per second, how the others
// ended (ERR_BUSY, deadline, other), the peak resident memory, and the probe's p50, p99
// and max, with its p99 as a multiple of the unloaded one.
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pegasus "github.com/gopegasus/pegasus"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(1)
	}
}

type options struct {
	bin         string
	valueSize   int
	clients     int
	duration    time.Duration
	timeout     time.Duration
	maxInflight int
	levels      []int
	saturation  float64
	metas       string
	pid         int
}

func run() error {
	var o options
	var levels string
	flag.StringVar(&o.bin, "pegasus", "pegasus", "the pegasus binary to start onebox with")
	flag.IntVar(&o.valueSize, "value-size", 64<<10, "bytes of each written value")
	flag.IntVar(&o.clients, "clients", 32, "clients (connections) the offered load is spread over")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "how long each level runs")
	flag.DurationVar(&o.timeout, "timeout", time.Second, "deadline of each write and read")
	flag.IntVar(&o.maxInflight, "max-inflight", 4096, "writes outstanding at most; beyond, a write is counted as not sent")
	flag.StringVar(&levels, "levels", "0,1,2,4", "multiples of the saturation rate to offer")
	flag.StringVar(&o.metas, "metas", "", "use this running cluster's meta servers instead of starting oneboxes (with --pid, its memory is sampled)")
	flag.IntVar(&o.pid, "pid", 0, "with --metas: the server process whose memory is sampled")
	flag.Float64Var(&o.saturation, "saturation", 0, "the saturation rate in writes/s (default: calibrate)")
	flag.Parse()
	for _, f := range strings.Split(levels, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 0 {
			return fmt.Errorf("bad level %q", f)
		}
		o.levels = append(o.levels, k)
	}
	fmt.Printf("value %d bytes, %d clients, %s per level, deadline %s\n", o.valueSize, o.clients, o.duration, o.timeout)
	saturation := o.saturation
	var baseP99 time.Duration
	fmt.Printf("%-6s %10s %10s %8s %8s %8s %8s %9s %9s %9s %7s\n",
		"level", "offered/s", "acked/s", "busy", "deadline", "other", "unsent", "rss MiB", "probe p50", "probe p99", "p99 ×")
	for _, k := range o.levels {
		var ob *onebox
		var err error
		if o.metas != "" {
			ob = &onebox{metas: strings.Split(o.metas, ","), pid: o.pid}
		} else if ob, err = startOnebox(o.bin); err != nil {
			return err
		}
		res, err := func() (result, error) {
			defer ob.stop()
			if saturation == 0 {
				var err error
				if saturation, err = calibrate(ob, o); err != nil {
					return result{}, err
				}
				fmt.Printf("saturation: %.0f writes/s of %d bytes (best closed-loop throughput)\n", saturation, o.valueSize)
			}
			return level(ob, o, float64(k)*saturation)
		}()
		if err != nil {
			return err
		}
		if k == 0 {
			baseP99 = res.probe.p99
		}
		ratio := "-"
		if baseP99 > 0 {
			ratio = fmt.Sprintf("%.1f", float64(res.probe.p99)/float64(baseP99))
		}
		fmt.Printf("%-6s %10.0f %10.0f %8d %8d %8d %8d %9d %9s %9s %7s\n",
			fmt.Sprintf("%d×", k), res.offered, res.acked, res.busy, res.deadline, res.other, res.unsent,
			res.rssPeak>>20, res.probe.p50.Round(10*time.Microsecond), res.probe.p99.Round(10*time.Microsecond), ratio)
		if res.probe.failed > 0 {
			fmt.Printf("       probe: %d of %d reads failed (first: %v)\n", res.probe.failed, res.probe.n, res.probe.firstErr)
		}
	}
	return nil
}

// onebox is a pegasus onebox child process.
type onebox struct {
	cmd   *exec.Cmd // nil for a cluster this program did not start
	pid   int
	dir   string
	metas []string
	exit  chan error
}

func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p < 65000 { // the onebox takes the two ports after each
			return p, nil
		}
	}
}

// startOnebox starts a onebox, again on other ports if the ones chosen were taken meanwhile.
func startOnebox(bin string) (*onebox, error) {
	var err error
	for range 5 {
		var ob *onebox
		if ob, err = startOneboxOnce(bin); err == nil {
			return ob, nil
		}
	}
	return nil, err
}

func startOneboxOnce(bin string) (*onebox, error) {
	dir, err := os.MkdirTemp("", "overload-")
	if err != nil {
		return nil, err
	}
	meta, err := freePort()
	if err != nil {
		return nil, err
	}
	rep, err := freePort()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "onebox.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "onebox", "--data", filepath.Join(dir, "onebox"),
		"--meta-port", strconv.Itoa(meta), "--replica-port", strconv.Itoa(rep))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	_ = log.Close()
	ob := &onebox{cmd: cmd, pid: cmd.Process.Pid, dir: dir, exit: make(chan error, 1)}
	go func() { ob.exit <- cmd.Wait() }()
	for i := range 3 {
		ob.metas = append(ob.metas, fmt.Sprintf("127.0.0.1:%d", meta+i))
	}
	// Ready once a write goes through.
	c := pegasus.NewClient(pegasus.Config{MetaServers: ob.metas})
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := func() error {
			tb, err := c.OpenTable(ctx, "temp")
			if err != nil {
				return err
			}
			return tb.Set(ctx, []byte("ready"), []byte{}, []byte("1"))
		}()
		cancel()
		if err == nil {
			return ob, nil
		}
		select {
		case err := <-ob.exit:
			log, _ := os.ReadFile(filepath.Join(dir, "onebox.log"))
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("onebox exited: %v: %s", err, strings.TrimSpace(string(log)))
		default:
		}
		if time.Now().After(deadline) {
			ob.stop()
			return nil, fmt.Errorf("onebox not ready after 60 s: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (ob *onebox) stop() {
	if ob.cmd == nil {
		return
	}
	_ = ob.cmd.Process.Signal(os.Interrupt)
	select {
	case <-ob.exit:
	case <-time.After(30 * time.Second):
		_ = ob.cmd.Process.Kill()
		<-ob.exit
	}
	_ = os.RemoveAll(ob.dir)
}

// rss returns the onebox's resident memory in bytes.
func (ob *onebox) rss() int64 {
	if ob.pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", ob.pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// tables opens n clients' connectors of table temp.
func tables(ob *onebox, n int) ([]pegasus.TableConnector, func(), error) {
	var cs []pegasus.Client
	var tbs []pegasus.TableConnector
	closeAll := func() {
		for _, c := range cs {
			_ = c.Close()
		}
	}
	for range n {
		c := pegasus.NewClient(pegasus.Config{MetaServers: ob.metas})
		cs = append(cs, c)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tb, err := c.OpenTable(ctx, "temp")
		cancel()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		tbs = append(tbs, tb)
	}
	return tbs, closeAll, nil
}

// calibrate returns the best closed-loop write throughput of 8, 16 and 32 writers.
func calibrate(ob *onebox, o options) (float64, error) {
	tbs, closeAll, err := tables(ob, 32)
	if err != nil {
		return 0, err
	}
	defer closeAll()
	value := make([]byte, o.valueSize)
	best := 0.0
	for _, writers := range []int{8, 16, 32} {
		var acked atomic.Int64
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					if tbs[w].Set(ctx, fmt.Appendf(nil, "cal%d-%d", w, i%1000), []byte{}, value) == nil {
						acked.Add(1)
					}
				}
			})
		}
		wg.Wait()
		cancel()
		rate := float64(acked.Load()) / 5
		fmt.Printf("calibration: %d writers, %.0f writes/s\n", writers, rate)
		best = max(best, rate)
	}
	if best == 0 {
		return 0, errors.New("no write was acknowledged during calibration")
	}
	return best, nil
}

type probeResult struct {
	n, failed     int
	firstErr      error
	p50, p99, max time.Duration
}

type result struct {
	offered, acked                float64
	busy, deadline, other, unsent int64
	rssPeak                       int64
	probe                         probeResult
}

// level offers rate writes per second for o.duration, with the probe and the memory samples.
func level(ob *onebox, o options, rate float64) (result, error) {
	var res result
	tbs, closeAll, err := tables(ob, max(o.clients, 1))
	if err != nil {
		return res, err
	}
	defer closeAll()
	probeTables, closeProbe, err := tables(ob, 1)
	if err != nil {
		return res, err
	}
	defer closeProbe()
	probe := probeTables[0]
	ctx := context.Background()
	if err := probe.Set(ctx, []byte("probe"), []byte("k"), []byte("a small record")); err != nil {
		return res, fmt.Errorf("probe record: %w", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Memory.
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			res.rssPeak = max(res.rssPeak, ob.rss())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	// The well-behaved client.
	var lat []time.Duration
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(ctx, o.timeout)
			start := time.Now()
			_, err := probe.Get(rctx, []byte("probe"), []byte("k"))
			d := time.Since(start)
			cancel()
			lat = append(lat, d)
			if err != nil {
				if res.probe.failed++; res.probe.firstErr == nil {
					res.probe.firstErr = err
				}
			}
		}
	})
	// The open-loop load.
	var acked, busy, deadline, other, unsent, sent atomic.Int64
	inflight := make(chan struct{}, o.maxInflight)
	value := make([]byte, o.valueSize)
	var writes sync.WaitGroup
	start := time.Now()
	if rate > 0 {
		interval := time.Duration(float64(time.Second) / rate)
		for i := 0; ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.Sub(start) >= o.duration {
				break
			}
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			sent.Add(1)
			select {
			case inflight <- struct{}{}:
			default:
				unsent.Add(1)
				continue
			}
			tb := tbs[i%len(tbs)]
			writes.Go(func() {
				defer func() { <-inflight }()
				wctx, cancel := context.WithTimeout(ctx, o.timeout)
				defer cancel()
				err := tb.Set(wctx, fmt.Appendf(nil, "load%d", i%100000), []byte{}, value)
				switch {
				case err == nil:
					acked.Add(1)
				case errors.Is(err, pegasus.ErrBusy):
					busy.Add(1)
				case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pegasus.ErrTimeout):
					deadline.Add(1)
				default:
					other.Add(1)
				}
			})
		}
	} else {
		time.Sleep(o.duration)
	}
	elapsed := time.Since(start)
	writes.Wait()
	close(stop)
	wg.Wait()
	res.offered = float64(sent.Load()) / elapsed.Seconds()
	res.acked = float64(acked.Load()) / elapsed.Seconds()
	res.busy, res.deadline, res.other, res.unsent = busy.Load(), deadline.Load(), other.Load(), unsent.Load()
	slices.SortFunc(lat, cmp.Compare[time.Duration])
	res.probe.n = len(lat)
	if n := len(lat); n > 0 {
		res.probe.p50, res.probe.p99, res.probe.max = lat[n/2], lat[n*99/100], lat[n-1]
	}
	return res, nil
}
