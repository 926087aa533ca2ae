package replica

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/storage"
)

// Table envs the replica acts on, set through the meta server (the shell's set_app_envs, or
// the meta's /meta/app/start_compaction and /meta/app/usage_scenario), as in Pegasus.
const (
	// EnvCompactOnceTrigger holds the unix time (seconds) of a one-off manual compaction
	// request: each replica compacts once for every new value larger than the last it acted on.
	EnvCompactOnceTrigger = "manual_compact.once.trigger_time"
	// EnvCompactPeriodicTrigger holds daily times ("3:00,21:00", local time): each replica
	// compacts once after each of them.
	EnvCompactPeriodicTrigger = "manual_compact.periodic.trigger_time"
	// EnvCompactMaxRunning bounds the replicas of the table compacting at once on one replica
	// server (0 or absent: no bound); the others wait, "queuing".
	EnvCompactMaxRunning = "manual_compact.max_concurrent_running_count"
	// EnvUsageScenario is the table's storage tuning: normal, prefer_write or bulk_load.
	EnvUsageScenario = "rocksdb.usage_scenario"
	// EnvValidatePartitionHash ("true" or not) makes scans that ask for it skip the records
	// whose hash does not map to the partition (protocol.md §5.4). The meta sets it when a
	// table is split.
	EnvValidatePartitionHash = "replica.split.validate_partition_hash"
)

// storeEnv is what a partition's store takes from the table envs.
func storeEnv(envs map[string]string) storage.Env {
	return storage.Env{ValidatePartitionHash: envs[EnvValidatePartitionHash] == "true"}
}

// usageScenario is a table's storage tuning. Pebble options cannot change while a store is
// open, except those read through functions; the one that matters here is how many
// compactions run at once. Each scenario sets that range: at least minCompactions, and up to
// maxCompactions when compaction debt or L0 read amplification builds up.
type usageScenario struct {
	name                           string
	minCompactions, maxCompactions int
}

// usageScenarios are Pegasus's scenarios; a table's scenario is its index here, and the
// first is the default: normal 1-2, prefer_write 2-4 (compactions keep up with a heavy write
// load so writes do not stall), bulk_load 4-8 (the most compaction throughput while data
// pours in).
var usageScenarios = []usageScenario{{"normal", 1, 2}, {"prefer_write", 2, 4}, {"bulk_load", 4, 8}}

// scenarioIndex returns the index in usageScenarios of the scenario called name.
func scenarioIndex(name string) (int32, bool) {
	for i, sc := range usageScenarios {
		if sc.name == name {
			return int32(i), true
		}
	}
	return 0, false
}

// scenarioTable holds each table's usage scenario (an index in usageScenarios), read live
// by its stores' Pebble options.
type scenarioTable struct {
	mu sync.Mutex
	m  map[int32]*atomic.Int32
}

// compactState is a partition replica's manual compaction bookkeeping. The handled trigger
// times are kept in the partition directory, so a restart does not compact again.
type compactState struct {
	mu              sync.Mutex
	loaded          bool
	pendingOnce     int64 // trigger time of a requested compaction not started yet
	pendingPeriodic int64 // scheduled time of a periodic compaction not started yet
	Once            int64 `json:"once_done"`     // last once trigger acted on
	Periodic        int64 `json:"periodic_done"` // last periodic time acted on
}

const compactFile = "manual_compact.json"

// scenarioOf returns the usage scenario cell of a table, read by its stores' options.
func (s *Server) scenarioOf(app int32) *atomic.Int32 {
	s.scenarios.mu.Lock()
	defer s.scenarios.mu.Unlock()
	if s.scenarios.m == nil {
		s.scenarios.m = map[int32]*atomic.Int32{}
	}
	v := s.scenarios.m[app]
	if v == nil {
		v = &atomic.Int32{}
		s.scenarios.m[app] = v
	}
	return v
}

// pebbleOptions are the base Pebble options of a partition's store: the compaction
// concurrency follows the table's usage scenario, live.
func (s *Server) pebbleOptions(pid idl.GPID) *pebble.Options {
	sc := s.scenarioOf(pid.AppID)
	return &pebble.Options{
		// One block cache for all the server's partitions: a hot partition may use what
		// idle ones do not. Likewise one cache of open table files, which bounds them for
		// the server, where each store would otherwise keep up to a thousand of its own.
		Cache:     s.cache,
		FileCache: s.fileCache,
		// The files without Pebble's disk-health wrapper, which keeps a ticking goroutine
		// per store and per file open for writing: a slow disk shows in the raft log's
		// fsync metrics, which every write waits for.
		FS: vfs.Default,
		CompactionConcurrencyRange: func() (int, int) {
			u := usageScenarios[sc.Load()]
			return u.minCompactions, u.maxCompactions
		},
	}
}

// applyEnvs acts on the table envs of an assignment: the usage scenario, and manual
// compaction requests, which the sync then starts for the whole table (startCompactions).
// It runs on the sync goroutine.
func (p *partition) applyEnvs(envs map[string]string) {
	if id, ok := scenarioIndex(envs[EnvUsageScenario]); ok {
		if old := p.s.scenarioOf(p.pid.AppID).Swap(id); old != id {
			p.lg.Info("usage scenario", "scenario", usageScenarios[id].name)
		}
	} else {
		p.s.scenarioOf(p.pid.AppID).Store(0)
	}
	p.noteCompaction(envs, time.Now())
}

func (p *partition) noteCompaction(envs map[string]string, now time.Time) {
	c := &p.compact
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		c.loaded = true
		if raw, err := os.ReadFile(filepath.Join(p.s.partitionDir(p.pid), compactFile)); err == nil {
			_ = json.Unmarshal(raw, c)
		}
	}
	if t, err := strconv.ParseInt(strings.TrimSpace(envs[EnvCompactOnceTrigger]), 10, 64); err == nil && t > c.Once && t > c.pendingOnce {
		c.pendingOnce = t
	}
	if due := lastScheduled(envs[EnvCompactPeriodicTrigger], now); due > c.Periodic && due > c.pendingPeriodic {
		c.pendingPeriodic = due
	}
}

// lastScheduled returns the latest of the daily times in spec ("3:00,21:00") at or before
// now, as unix seconds, or 0 if spec has none.
func lastScheduled(spec string, now time.Time) int64 {
	var best int64
	for _, item := range strings.Split(spec, ",") {
		h, m, ok := strings.Cut(strings.TrimSpace(item), ":")
		hh, err1 := strconv.Atoi(h)
		mm, err2 := strconv.Atoi(m)
		if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
			continue
		}
		t := time.Date(now.Year(), now.Month(), now.Day(), hh, mm, 0, 0, now.Location())
		if t.After(now) {
			t = t.AddDate(0, 0, -1)
		}
		best = max(best, t.Unix())
	}
	return best
}

// startCompactions starts the requested manual compactions of a table's replicas on this
// server, as many as its max_concurrent_running_count allows.
func (s *Server) startCompactions(app int32, envs map[string]string) {
	limit, _ := strconv.Atoi(strings.TrimSpace(envs[EnvCompactMaxRunning]))
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.mu.RLock()
	var parts []*partition
	for pid, p := range s.parts {
		if pid.AppID == app {
			parts = append(parts, p)
		}
	}
	s.mu.RUnlock()
	running := 0
	for _, p := range parts {
		if p.compactionState() == "running" {
			running++
		}
	}
	for _, p := range parts {
		if limit > 0 && running >= limit {
			return
		}
		c := &p.compact
		c.mu.Lock()
		if c.pendingOnce == 0 && c.pendingPeriodic == 0 {
			c.mu.Unlock()
			continue
		}
		db, release := p.readDB()
		started := db.StartCompaction()
		release()
		if started {
			running++
			if c.pendingOnce != 0 {
				c.Once = c.pendingOnce
			}
			if c.pendingPeriodic != 0 {
				c.Periodic = c.pendingPeriodic
			}
			c.pendingOnce, c.pendingPeriodic = 0, 0
			if raw, err := json.Marshal(c); err == nil {
				if err := os.WriteFile(filepath.Join(s.partitionDir(p.pid), compactFile), raw, 0o644); err != nil {
					p.lg.Warn("record manual compaction", "err", err)
				}
			}
			p.lg.Info("manual compaction started")
		}
		c.mu.Unlock()
	}
}

// compactionState is the replica's manual compaction state as Pegasus names it: idle,
// queuing (requested, waiting for its turn), running or finished.
func (p *partition) compactionState() string {
	db, release := p.readDB()
	st := db.CompactionStatus().State
	release()
	if st == storage.CompactionRunning {
		return "running"
	}
	c := &p.compact
	c.mu.Lock()
	queued := c.pendingOnce != 0 || c.pendingPeriodic != 0
	c.mu.Unlock()
	switch {
	case queued:
		return "queuing"
	case st == storage.CompactionFinished:
		return "finished"
	default:
		return "idle"
	}
}

// Envs returns the table envs the replica of partition pid hosted here acts on (a copy), and
// whether the server hosts it. Safe for concurrent use.
func (s *Server) Envs(pid idl.GPID) (map[string]string, bool) {
	p := s.partition(pid)
	if p == nil {
		return nil, false
	}
	return maps.Clone(p.table().envs), true
}
