package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/hotkey"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/storage"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Hot keys (operations.md §6): every partition replica has a detector per type (read,
// write) that RPC_DETECT_HOTKEY starts, stops and queries, and, unless hotkey_topk_enabled is
// off, an always-on top-k of its hash keys per type, on /metrics (entity type hotkey) and
// behind the replica.hotkeys remote command. Reads are counted where they are served (the
// primary), writes where they are applied (every replica), as Pegasus counts them; incr,
// check_and_set and check_and_mutate count as reads too.

// hotkeyTopKWindow is the window of the top-k: it reports the last complete window and the
// current one.
const hotkeyTopKWindow = metric.Window

// hotkeyMetricsPerType is how many keys of each type a partition replica reports on
// /metrics; the remote command gives up to the top-k's capacity.
const hotkeyMetricsPerType = 5

// DefaultHotkeyTopKSampleEvery is the default of hotkey_topk_sample_every: the top-k counts
// one request in 8, which keeps its cost on a read-only workload well under 3% (see
// BenchmarkHotKeyTopKCost in internal/testcluster) while any key with a noticeable share of
// a busy partition's traffic is sampled hundreds of times a second.
const DefaultHotkeyTopKSampleEvery = 8

// hotkeySettings are the hot-key settings, in section [pegasus.server].
type hotkeySettings struct {
	bucketThreshold, keyThreshold, buckets, maxSeconds, intervalS *config.Value[uint32]
	topK                                                          *config.Value[bool]
	sampleEvery                                                   *config.Value[uint32]
}

func defineHotkeySettings(r *config.Registry) *hotkeySettings {
	u32 := func(name, desc string, def uint32, mutable bool, check func(uint32) error) *config.Value[uint32] {
		return config.Define(r, config.Spec[uint32]{Section: "pegasus.server", Name: name, Description: desc,
			Default: def, Mutable: mutable, Validate: check})
	}
	positive := func(v uint32) error {
		if v == 0 {
			return errors.New("must be positive")
		}
		return nil
	}
	return &hotkeySettings{
		bucketThreshold: u32("hot_bucket_variance_threshold",
			"How many standard deviations of the other buckets the hottest hash bucket must be above their mean for a detection's coarse phase to find it hot.",
			hotkey.DefaultBucketThreshold, true, positive),
		keyThreshold: u32("hot_key_variance_threshold",
			"How many standard deviations of the other keys of the hot bucket the hottest key must be above their mean for a detection's fine phase to find it hot.",
			hotkey.DefaultKeyThreshold, true, positive),
		buckets: u32("hotkey_buckets_num",
			"The hash buckets of a detection's coarse phase: a prime, at least 3.", hotkey.DefaultBuckets, false,
			func(v uint32) error {
				if v < 3 {
					return errors.New("must be at least 3")
				}
				for i := uint32(2); i <= v/i; i++ {
					if v%i == 0 {
						return errors.New("must be a prime")
					}
				}
				return nil
			}),
		maxSeconds: u32("max_seconds_to_detect_hotkey",
			"How long, in seconds, a hot-key detection that found nothing runs before it stops by itself.",
			uint32(hotkey.DefaultTimeout/time.Second), true, positive),
		intervalS: u32("hotkey_analyse_time_interval_s",
			"How often, in seconds, the hot-key detections analyse what they captured (and the top-k of hash keys rolls its window at most).",
			uint32(hotkey.DefaultInterval/time.Second), false, positive),
		topK: config.Define(r, config.Spec[bool]{Section: "pegasus.server", Name: "hotkey_topk_enabled", Mutable: true, Default: true,
			Description: "Whether every partition replica keeps a top-k of its read and of its written hash keys (on /metrics as entity type hotkey, and in the shell's hotkeys)."}),
		sampleEvery: u32("hotkey_topk_sample_every",
			"The top-k of hash keys counts one request in this many, drawn at random, with this many times its weight (1: every request).",
			DefaultHotkeyTopKSampleEvery, true, positive),
	}
}

func (st *hotkeySettings) options() hotkey.Options {
	return hotkey.Options{
		Buckets:         int(st.buckets.Get()),
		BucketThreshold: float64(st.bucketThreshold.Get()),
		KeyThreshold:    float64(st.keyThreshold.Get()),
		Timeout:         time.Duration(st.maxSeconds.Get()) * time.Second,
	}
}

// hotState is a partition replica's hot-key state; each top-k is made on first use.
type hotState struct {
	detect [2]hotkey.Detector
	top    [2]atomic.Pointer[hotkey.TopK]
}

func (h *hotState) topK(t idl.HotkeyType) *hotkey.TopK {
	if tk := h.top[t].Load(); tk != nil {
		return tk
	}
	h.top[t].CompareAndSwap(nil, hotkey.NewTopK(0, time.Now()))
	return h.top[t].Load()
}

// hotWanted says whether a request of type t is captured by a running detection, and
// whether (and with which factor on its weight, 0 for not) the top-k counts it: one request
// in hotkey_topk_sample_every, drawn at random, with that many times its weight.
func (p *partition) hotWanted(t idl.HotkeyType) (det bool, topScale int64) {
	det = p.hot.detect[t].Running()
	if st := p.s.settings.Hotkeys; st.topK.Get() {
		if n := st.sampleEvery.Get(); n <= 1 {
			topScale = 1
		} else if rand.Uint32N(n) == 0 {
			topScale = int64(n)
		}
	}
	return det, topScale
}

// noteHot counts a request of type t for hashKey with weight.
func (p *partition) noteHot(t idl.HotkeyType, hashKey []byte, weight int64) {
	if det, scale := p.hotWanted(t); det || scale > 0 {
		p.noteHotAs(t, hashKey, weight, det, scale)
	}
}

func (p *partition) noteHotAs(t idl.HotkeyType, hashKey []byte, weight int64, det bool, scale int64) {
	weight = max(weight, 1)
	hash := hotkey.Hash(hashKey)
	if det {
		p.hot.detect[t].Capture(hash, hashKey, weight)
	}
	if scale > 0 {
		p.hot.topK(t).Observe(hash, hashKey, weight*scale)
	}
}

// noteHotKey is noteHot for an encoded key (hash key and sort key).
func (p *partition) noteHotKey(t idl.HotkeyType, k []byte, weight int64) {
	if det, scale := p.hotWanted(t); det || scale > 0 {
		if hk, _, err := key.Decode(k); err == nil {
			p.noteHotAs(t, hk, weight, det, scale)
		}
	}
}

// readCounted reports whether a read's storage status is one Pegasus counts (found or not).
func readCounted(rc wire.Status) bool { return rc == wire.StatusOK || rc == wire.StatusNotFound }

// noteAppliedWrites counts the writes of an applied batch, with their results (which may be
// fewer, for a batch the store refused: then nothing is counted).
func (p *partition) noteAppliedWrites(ms []storage.Mutation, rs []storage.WriteResult) {
	if len(ms) != len(rs) {
		return
	}
	for i := range ms {
		p.noteMutation(&ms[i], rs[i].Error)
	}
}

func (p *partition) noteMutation(m *storage.Mutation, st wire.Status) {
	ok := st == wire.StatusOK
	readOK := ok || st == wire.StatusInvalidArgument || st == wire.StatusTryAgain
	switch {
	case m.Put != nil && ok:
		p.noteHotKey(idl.HotkeyWrite, m.Put.Key, 1)
	case m.Remove != nil && ok:
		p.noteHotKey(idl.HotkeyWrite, m.Remove.Key, 1)
	case m.MultiPut != nil:
		p.noteHot(idl.HotkeyWrite, m.MultiPut.HashKey, int64(len(m.MultiPut.KVs)))
	case m.MultiRemove != nil && ok:
		p.noteHot(idl.HotkeyWrite, m.MultiRemove.HashKey, int64(len(m.MultiRemove.SortKeys)))
	case m.Incr != nil:
		if ok {
			p.noteHotKey(idl.HotkeyWrite, m.Incr.Key, 1)
		}
		if ok || st == wire.StatusInvalidArgument {
			p.noteHotKey(idl.HotkeyRead, m.Incr.Key, 1)
		}
	case m.CheckAndSet != nil:
		if ok {
			p.noteHot(idl.HotkeyWrite, m.CheckAndSet.HashKey, 1)
		}
		if readOK {
			p.noteHot(idl.HotkeyRead, m.CheckAndSet.HashKey, 1)
		}
	case m.CheckAndMutate != nil:
		if ok {
			p.noteHot(idl.HotkeyWrite, m.CheckAndMutate.HashKey, int64(len(m.CheckAndMutate.Mutates)))
		}
		if readOK {
			p.noteHot(idl.HotkeyRead, m.CheckAndMutate.HashKey, 1)
		}
	case m.Duplicate != nil:
		for i := range m.Duplicate.Writes {
			p.noteMutation(&m.Duplicate.Writes[i].Mutation, wire.StatusOK)
		}
	}
}

// hotkeyTypeName is Pegasus's name of a hot-key type in its answers.
func hotkeyTypeName(t idl.HotkeyType) string { return t.String() }

// handleDetectHotkey serves RPC_DETECT_HOTKEY with Pegasus's answers: the request names its
// partition in its body, and any replica of it here answers (a secondary sees the writes it
// applies, but no reads).
func (s *Server) handleDetectHotkey(_ context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	a := req.Args.(*idl.DetectHotkeyRequest)
	resp := &idl.DetectHotkeyResponse{Err: idl.ErrorCode(wire.OK.Name())}
	fail := func(code wire.Code, hint string) (idl.Value, wire.Code) {
		resp.Err, resp.ErrHint = idl.ErrorCode(code.Name()), idl.Some(hint)
		return resp, wire.OK
	}
	p := s.partition(a.PID)
	if p == nil {
		return fail(wire.ErrObjectNotFound, fmt.Sprintf("not find the replica %s \n", a.PID.String()))
	}
	if a.Action != idl.DetectStart && a.Action != idl.DetectStop && a.Action != idl.DetectQuery {
		return fail(wire.ErrInvalidParameters, "invalid detect_action")
	}
	if a.Type != idl.HotkeyRead && a.Type != idl.HotkeyWrite {
		return fail(wire.ErrInvalidParameters, "invalid hotkey_type")
	}
	d, name := &p.hot.detect[a.Type], hotkeyTypeName(a.Type)
	lg := p.lg.With("hotkey_type", name)
	switch a.Action {
	case idl.DetectStart:
		started, st, result := d.Start(time.Now(), s.settings.Hotkeys.options())
		switch {
		case started:
			resp.ErrHint = idl.Some(fmt.Sprintf("starting to detect %s hotkey", name))
			lg.Info("hot-key detection started")
		case st == hotkey.Finished:
			return fail(wire.ErrBusy, fmt.Sprintf("%s hotkey result has been found: %s, you can send a stop rpc to restart hotkey detection",
				name, hotkey.Escape(result)))
		default:
			return fail(wire.ErrBusy, fmt.Sprintf("still detecting %s hotkey, state is %s", name, st))
		}
	case idl.DetectStop:
		d.Stop() // Pegasus answers a stop without a hint
		lg.Info("hot-key detection stopped, cache cleared")
	case idl.DetectQuery:
		st, result := d.Result()
		if st != hotkey.Finished {
			return fail(wire.ErrBusy, fmt.Sprintf("Can't get hotkey now, now state: %s", st))
		}
		resp.HotkeyResult = idl.Some(hotkey.Escape(result))
	}
	return resp, wire.OK
}

// hotkeyInterval is the period of the detections' analyses.
func (s *Server) hotkeyInterval() time.Duration {
	if s.cfg.HotkeyInterval > 0 {
		return s.cfg.HotkeyInterval
	}
	return time.Duration(s.settings.Hotkeys.intervalS.Get()) * time.Second
}

// hotkeyLoop analyses the running detections every interval and rolls the top-k windows,
// until ctx ends.
func (s *Server) hotkeyLoop(ctx context.Context) {
	every := s.hotkeyInterval()
	t := time.NewTicker(every)
	defer t.Stop()
	lastRoll := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			roll := now.Sub(lastRoll) >= hotkeyTopKWindow
			if roll {
				lastRoll = now
			}
			for _, p := range s.partitionList() {
				for i := range p.hot.detect {
					d := &p.hot.detect[i]
					if !d.Running() {
						continue
					}
					if st := d.Analyse(now); st == hotkey.Stopped {
						p.lg.Info("hot-key detection found nothing in time, stopped", "hotkey_type", hotkeyTypeName(idl.HotkeyType(i)))
					} else if st == hotkey.Finished {
						_, k := d.Result()
						p.lg.Warn("hot key found", "hotkey_type", hotkeyTypeName(idl.HotkeyType(i)), "hash_key", hotkey.Escape(k))
					}
				}
				if roll {
					for i := range p.hot.top {
						if tk := p.hot.top[i].Load(); tk != nil {
							tk.Rotate(now)
						}
					}
				}
			}
		}
	}
}

// partitionList returns the partitions hosted here.
func (s *Server) partitionList() []*partition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	parts := make([]*partition, 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	return parts
}

// HotKeys is a partition replica's top-k of one type, as [Server.HotKeys] and the
// replica.hotkeys remote command report it.
type HotKeys struct {
	// Total is the weight of every request of the type over SpanMS milliseconds.
	Total  int64    `json:"total"`
	SpanMS int64    `json:"span_ms"`
	Keys   []HotKey `json:"keys"`
}

// HotKey is one hash key of a [HotKeys].
type HotKey struct {
	// HashKey is the key, or its first hotkey.MaxKeyBytes bytes when Len is larger.
	HashKey []byte `json:"hash_key"`
	Len     int    `json:"len"`
	// Requests estimates the key's weight over the span (an overestimate by at most Error).
	Requests int64 `json:"requests"`
	Error    int64 `json:"error"`
}

// PartitionHotKeys are a partition replica's top-k of reads and of writes.
type PartitionHotKeys struct {
	AppID          int32   `json:"app_id"`
	PartitionIndex int32   `json:"partition_index"`
	Primary        bool    `json:"primary"`
	Read           HotKeys `json:"read"`
	Write          HotKeys `json:"write"`
}

func hotKeysOf(sum hotkey.Summary) HotKeys {
	h := HotKeys{Total: sum.Total, SpanMS: sum.Span.Milliseconds(), Keys: []HotKey{}}
	for _, e := range sum.Entries {
		h.Keys = append(h.Keys, HotKey{HashKey: e.HashKey, Len: e.Len, Requests: e.Count, Error: e.Err})
	}
	return h
}

// HotKeys returns the top-k (up to k keys of each type, all held when k <= 0) of the
// partition replicas of table appID here (every table when appID is 0), by partition. A
// replica whose top-k saw nothing has empty lists. Safe for concurrent use.
func (s *Server) HotKeys(appID int32, k int) []PartitionHotKeys {
	now := time.Now()
	var out []PartitionHotKeys
	for _, p := range s.partitionList() {
		if appID != 0 && p.pid.AppID != appID {
			continue
		}
		ph := PartitionHotKeys{AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex, Primary: p.isLeader.Load()}
		for i, dst := range []*HotKeys{&ph.Read, &ph.Write} {
			var sum hotkey.Summary
			if tk := p.hot.top[i].Load(); tk != nil {
				sum = tk.Top(now, k)
			}
			*dst = hotKeysOf(sum)
		}
		out = append(out, ph)
	}
	slices.SortFunc(out, func(a, b PartitionHotKeys) int {
		if a.AppID != b.AppID {
			return int(a.AppID - b.AppID)
		}
		return int(a.PartitionIndex - b.PartitionIndex)
	})
	return out
}

// registerHotkeyCommands adds the replica.hotkeys remote command.
func (s *Server) registerHotkeyCommands() {
	s.cmds.Register("replica.hotkeys",
		"replica.hotkeys [APP_ID] [K]: the top-k hash keys of reads and writes of the partition replicas here (of table APP_ID), as JSON",
		func(args []string) (string, error) {
			var appID, k int
			var err error
			if len(args) > 0 {
				if appID, err = strconv.Atoi(args[0]); err != nil || appID < 0 {
					return "", fmt.Errorf("invalid app id %q", args[0])
				}
			}
			if len(args) > 1 {
				if k, err = strconv.Atoi(args[1]); err != nil {
					return "", fmt.Errorf("invalid count %q", args[1])
				}
			}
			if len(args) > 2 {
				return "", errors.New("too many arguments")
			}
			b, err := json.Marshal(s.HotKeys(int32(appID), k))
			return string(b), err
		})
}

// hotkeyEntities are the top keys of the partition replicas, one entity per key:
// hotkey@<app>.<pidx>.<type>.<rank>, with the key (escaped) among its attributes.
func hotkeyEntities(parts []*partition, now time.Time) []metric.Entity {
	var out []metric.Entity
	for _, p := range parts {
		for i := range p.hot.top {
			tk := p.hot.top[i].Load()
			if tk == nil {
				continue
			}
			sum := tk.Top(now, hotkeyMetricsPerType)
			typ := strings.ToLower(hotkeyTypeName(idl.HotkeyType(i)))
			secs := sum.Span.Seconds()
			for rank, e := range sum.Entries {
				name := hotkey.Escape(e.HashKey)
				if e.Len > len(e.HashKey) {
					name += fmt.Sprintf("...(%d bytes)", e.Len)
				}
				r := strconv.Itoa(rank + 1)
				attrs := append(gpidAttrs(p.pid), [2]string{"hotkey_type", typ}, [2]string{"rank", r}, [2]string{"hash_key", name})
				var qps, permille int64
				if secs > 0 {
					qps = int64(float64(e.Count) / secs)
				}
				if sum.Total > 0 {
					permille = int64(float64(e.Count) * 1000 / float64(sum.Total))
				}
				out = append(out, metric.Entity{Type: "hotkey", ID: "hotkey@" + p.pid.String() + "." + typ + "." + r, Attrs: attrs,
					Metrics: []metric.Metric{
						metric.GaugeOf("requests", "Requests", "The estimated "+typ+" requests of the hash key over the top-k's last complete and current windows", e.Count),
						metric.GaugeOf("qps", "Requests", "The estimated "+typ+" requests per second of the hash key over those windows", qps),
						metric.GaugeOf("share_permille", "Permille", "The hash key's share of the replica's "+typ+" requests over those windows, in thousandths", permille),
					}})
			}
		}
	}
	return out
}
