package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
)

// store is one system under test: how to start it and which go-ycsb binding talks to it.
type store struct {
	name, label string
	binding     string
	start       func(ctx context.Context, pegasusBin, dir string) (*servers, error)
}

func storeByName(name string) (store, bool) {
	switch name {
	case "onebox":
		return store{name, "gopegasus onebox", "gopegasus", startOnebox}, true
	case "onebox-os":
		return store{name, "gopegasus onebox, durability os (unsafe)", "gopegasus", startOneboxUnsafe}, true
	case "gocli2018":
		return store{name, "gopegasus onebox, go-ycsb's pegasus binding", "pegasus", startOneboxSettled}, true
	case "redis":
		return store{name, "Redis (AOF everysec)", "redis", startRedis}, true
	case "etcd1":
		return store{name, "etcd (1 member)", "etcd", func(ctx context.Context, _, dir string) (*servers, error) { return startEtcd(ctx, dir, 1) }}, true
	case "etcd3":
		return store{name, "etcd (3 members)", "etcd", func(ctx context.Context, _, dir string) (*servers, error) { return startEtcd(ctx, dir, 3) }}, true
	}
	return store{}, false
}

// servers are the processes of a running store and the binding properties to reach it.
type servers struct {
	procs []*exec.Cmd
	props map[string]string
	ports []int  // the onebox's meta and first replica port, to restart it with its identity
	desc  string // what was started, for the results
}

func (s *servers) pids() []int {
	var p []int
	for _, c := range s.procs {
		p = append(p, c.Process.Pid)
	}
	return p
}

// stop ends every process it started: SIGTERM, then SIGKILL after 20 s.
func (s *servers) stop() {
	for _, c := range s.procs {
		c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range s.procs {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
	s.procs = nil
}

// spawn starts a server process with its output in dir/name.log.
func (s *servers) spawn(dir, name string, bin string, args ...string) error {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return err
	}
	c := exec.Command(bin, args...)
	c.Stdout, c.Stderr, c.Dir = log, log, dir
	if err := c.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	log.Close() // the child has its own descriptor
	s.procs = append(s.procs, c)
	return nil
}

// freePorts finds n consecutive free loopback ports.
func freePorts(n int) (int, error) {
	for range 200 {
		base := 20000 + rand.IntN(20000)
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("no free ports")
}

// waitFor retries ready until it succeeds or a minute passes.
func waitFor(ctx context.Context, what string, ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := ready(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready: %w", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func startOnebox(ctx context.Context, pegasusBin, dir string) (*servers, error) {
	return startOneboxWith(ctx, dir, pegasusBin, nil, nil)
}

// startOneboxUnsafe starts the onebox with raft_log_durability "os": a write is acknowledged
// once a quorum has written it to the operating system, the logs fsynced every 100 ms.
func startOneboxUnsafe(ctx context.Context, pegasusBin, dir string) (*servers, error) {
	return startOneboxWith(ctx, dir, pegasusBin, nil, nil, "--durability", "os")
}

// startOneboxWith starts "pegasus onebox", or the profiling wrapper when wrapper is set
// (its flags first, then "--" and the onebox's). ports, when set, are those of an earlier
// start on the same data: servers are known by their addresses. extra are more flags of
// the onebox.
func startOneboxWith(ctx context.Context, dir, bin string, wrapper []string, ports []int, extra ...string) (*servers, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if ports == nil {
		metaPort, err := freePorts(3) // the onebox runs three metas on consecutive ports
		if err != nil {
			return nil, err
		}
		replicaPort, err := freePorts(3)
		if err != nil {
			return nil, err
		}
		ports = []int{metaPort, replicaPort}
	}
	metaPort, replicaPort := ports[0], ports[1]
	args := []string{"onebox"}
	if wrapper != nil {
		args = append(wrapper, "--")
	}
	args = append(args, "--data", filepath.Join(dir, "data"), "--meta-port", strconv.Itoa(metaPort),
		"--replica-port", strconv.Itoa(replicaPort), "--log-level", "warn")
	args = append(args, extra...)
	s := &servers{ports: ports, props: map[string]string{
		propPegasusMetas: "127.0.0.1:" + strconv.Itoa(metaPort),
		propPegasusTable: "temp",
		// go-ycsb's pegasus binding (compat/gocli2018/ycsb/pegasus) names them so.
		"meta_servers": "127.0.0.1:" + strconv.Itoa(metaPort),
		"table":        "temp",
	}}
	if err := s.spawn(dir, "onebox", bin, args...); err != nil {
		return nil, err
	}
	err := waitFor(ctx, "onebox", func(ctx context.Context) error {
		c, err := pegasus.New(pegasus.Config{MetaServers: []string{s.props[propPegasusMetas]}})
		if err != nil {
			return err
		}
		defer c.Close()
		t, err := c.OpenTable(ctx, "temp")
		if err != nil {
			return err
		}
		return t.Set(ctx, []byte("ready"), []byte("ready"), []byte("1"))
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	if s.desc, err = describeOnebox(ctx, s.props[propPegasusMetas]); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startOneboxSettled starts the onebox and waits until the primaries of table temp are spread
// over its replica servers, as the onebox keeps them: the 2018 go-client of go-ycsb's pegasus
// binding does not retry a write refused by a replica that has just handed its primary role
// to another.
func startOneboxSettled(ctx context.Context, pegasusBin, dir string) (*servers, error) {
	s, err := startOnebox(ctx, pegasusBin, dir)
	if err != nil {
		return nil, err
	}
	ad, err := admin.New(admin.Config{MetaServers: []string{s.props[propPegasusMetas]}})
	if err != nil {
		s.stop()
		return nil, err
	}
	defer ad.Close()
	err = waitFor(ctx, "spread primaries", func(ctx context.Context) error {
		nodes, err := ad.ListNodes(ctx)
		if err != nil {
			return err
		}
		cfg, err := ad.QueryConfig(ctx, "temp")
		if err != nil {
			return err
		}
		led := make(map[string]int, len(nodes))
		for _, n := range nodes {
			led[n.Address] = 0
		}
		for _, p := range cfg.Partitions {
			if p.Primary == "" {
				return fmt.Errorf("partition %d has no primary", p.Index)
			}
			led[p.Primary]++
		}
		lo, hi := len(cfg.Partitions), 0
		for _, n := range led {
			lo, hi = min(lo, n), max(hi, n)
		}
		if hi-lo > 1 {
			return fmt.Errorf("primaries per replica server from %d to %d", lo, hi)
		}
		return nil
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// describeOnebox asks the onebox how many replica servers it runs and how table temp is laid out.
func describeOnebox(ctx context.Context, meta string) (string, error) {
	ad, err := admin.New(admin.Config{MetaServers: []string{meta}})
	if err != nil {
		return "", err
	}
	defer ad.Close()
	nodes, err := ad.ListNodes(ctx)
	if err != nil {
		return "", err
	}
	tables, err := ad.ListTables(ctx)
	if err != nil {
		return "", err
	}
	for _, t := range tables {
		if t.Name == "temp" {
			return fmt.Sprintf("%d replica servers; table temp has %d partitions of %d replicas", len(nodes), t.PartitionCount, t.ReplicaCount), nil
		}
	}
	return "", errors.New("the onebox has no table temp")
}

func startRedis(ctx context.Context, _, dir string) (*servers, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &servers{props: map[string]string{"redis.addr": addr}}
	err = s.spawn(dir, "redis", "redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--dir", dir, "--daemonize", "no")
	if err != nil {
		return nil, err
	}
	err = waitFor(ctx, "redis", func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+PONG") {
			return fmt.Errorf("PING answered %q", line)
		}
		return nil
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func startEtcd(ctx context.Context, dir string, members int) (*servers, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base, err := freePorts(2 * members)
	if err != nil {
		return nil, err
	}
	var cluster, endpoints []string
	for i := range members {
		cluster = append(cluster, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, base+members+i))
		endpoints = append(endpoints, fmt.Sprintf("127.0.0.1:%d", base+i))
	}
	s := &servers{props: map[string]string{"etcd.endpoints": strings.Join(endpoints, ",")}}
	for i := range members {
		client := fmt.Sprintf("http://127.0.0.1:%d", base+i)
		peer := fmt.Sprintf("http://127.0.0.1:%d", base+members+i)
		err := s.spawn(dir, fmt.Sprintf("etcd-m%d", i), "etcd",
			"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(dir, fmt.Sprintf("m%d", i)),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-token", "ycsb-compare",
			"--initial-cluster-state", "new", "--quota-backend-bytes", strconv.Itoa(8<<30),
			"--logger", "zap", "--log-level", "warn")
		if err != nil {
			s.stop()
			return nil, err
		}
	}
	err = waitFor(ctx, "etcd", func(ctx context.Context) error {
		c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Put(ctx, "ready", "1")
		return err
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// clockTicks is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on Linux).
const clockTicks = 100

// cpuSeconds sums the user and system CPU time of processes from /proc/<pid>/stat.
func cpuSeconds(pids []int) (float64, error) {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		s, err := parseStatCPU(string(b))
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		total += s
	}
	return total, nil
}

// parseStatCPU returns utime+stime in seconds from a /proc/<pid>/stat line. The command
// name (field 2) is in parentheses and may hold spaces, so fields are counted after the
// last ')'.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(stat[i+1:])
	// After the name: state is field 3, so utime (14) and stime (15) are f[11] and f[12].
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed stat times")
	}
	return float64(u+s) / clockTicks, nil
}

// loadAverage returns /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
