// Package throttle implements Pegasus's table throttling envs: their forms, their
// validation (the meta refuses bad forms when they are set) and the per-partition
// controllers a replica server applies them with (operations.md §6).
//
// A QPS or size env is a comma-separated list of at most one delay and one reject term,
// each N[K|M]*delay*ms or N[K|M]*reject*ms (K = 1000, M = 1000000). The table's units per
// second are shared by its partitions: each allows N/partition_count + 1 per one-second
// window. Past the delay units a request is held min(ms, client_timeout/2) and then served;
// past the reject units it is held as long and then answered ERR_BUSY. The read-by-size env
// is a token bucket instead: "N[K|M]" (or the reject form, whose ms is ignored) bytes per
// second; a read that finds the bucket empty is refused with ERR_BUSY at once, and each read
// served takes its reply's bytes.
package throttle

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Table envs.
const (
	EnvWrite       = "replica.write_throttling"
	EnvWriteBySize = "replica.write_throttling_by_size"
	EnvRead        = "replica.read_throttling"
	EnvReadBySize  = "replica.read_throttling_by_size"
	EnvDeny        = "replica.deny_client_request"
)

// ErrInvalid wraps every refusal of an env value.
var ErrInvalid = errors.New("throttle: invalid env value")

// Spec is a parsed QPS or size env, units for the whole table.
type Spec struct {
	DelayUnits, RejectUnits int64 // 0: no such term
	Delay, RejectDelay      time.Duration
}

// Parse parses a QPS or size env value.
func Parse(v string) (Spec, error) {
	var sp Spec
	terms := splitNonEmpty(v, ",")
	if len(terms) == 0 {
		return sp, fmt.Errorf("%w: empty env value", ErrInvalid)
	}
	var delaySeen, rejectSeen bool
	for _, t := range terms {
		f := strings.Split(t, "*")
		if len(f) != 3 {
			return sp, fmt.Errorf("%w: %q: invalid field count, should be 3 (N[K|M]*delay|reject*ms)", ErrInvalid, t)
		}
		units, err := parseUnits(f[0])
		if err != nil {
			return sp, fmt.Errorf("%w: %q: %v", ErrInvalid, t, err)
		}
		ms, err := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
		if err != nil || ms < 0 {
			return sp, fmt.Errorf("%w: %q: invalid delay ms, should be a non-negative integer", ErrInvalid, t)
		}
		d := time.Duration(ms) * time.Millisecond
		switch strings.TrimSpace(f[1]) {
		case "delay":
			if delaySeen {
				return sp, fmt.Errorf("%w: duplicate delay term", ErrInvalid)
			}
			delaySeen, sp.DelayUnits, sp.Delay = true, units, d
		case "reject":
			if rejectSeen {
				return sp, fmt.Errorf("%w: duplicate reject term", ErrInvalid)
			}
			rejectSeen, sp.RejectUnits, sp.RejectDelay = true, units, d
		default:
			return sp, fmt.Errorf("%w: %q: invalid throttling type %q, should be delay or reject", ErrInvalid, t, f[1])
		}
	}
	return sp, nil
}

// ParseBucket parses replica.read_throttling_by_size: bytes per second of the table.
func ParseBucket(v string) (int64, error) {
	s := strings.TrimSpace(v)
	if !strings.Contains(s, "*") {
		n, err := parseUnits(s)
		if err != nil {
			return 0, fmt.Errorf("%w: %q: %v", ErrInvalid, v, err)
		}
		return n, nil
	}
	sp, err := Parse(s)
	if err != nil {
		return 0, err
	}
	if sp.DelayUnits != 0 || sp.RejectUnits == 0 {
		return 0, fmt.Errorf("%w: %q: read_throttling_by_size takes N[K|M] or N[K|M]*reject*ms", ErrInvalid, v)
	}
	return sp.RejectUnits, nil
}

// Deny is a parsed replica.deny_client_request: which requests are refused, and how.
type Deny struct {
	Reads, Writes bool
	// Timeout: no answer (the client times out); else ERR_INVALID_STATE (reconfig), on
	// which clients refresh their routing.
	Timeout bool
}

// ParseDeny parses replica.deny_client_request, "timeout|reconfig*read|write|all".
func ParseDeny(v string) (Deny, error) {
	var d Deny
	mode, target, ok := strings.Cut(strings.TrimSpace(v), "*")
	switch mode {
	case "timeout":
		d.Timeout = true
	case "reconfig":
	default:
		ok = false
	}
	switch target {
	case "read":
		d.Reads = true
	case "write":
		d.Writes = true
	case "all":
		d.Reads, d.Writes = true, true
	default:
		ok = false
	}
	if !ok {
		return Deny{}, fmt.Errorf("%w: %q: should be timeout*read|write|all or reconfig*read|write|all", ErrInvalid, v)
	}
	return d, nil
}

// Validate checks the value of a throttling env; nil for every other env name. The meta
// calls it when envs are set.
func Validate(name, value string) error {
	var err error
	switch name {
	case EnvWrite, EnvWriteBySize, EnvRead:
		_, err = Parse(value)
	case EnvReadBySize:
		_, err = ParseBucket(value)
	case EnvDeny:
		_, err = ParseDeny(value)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseUnits(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1000, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1000*1000, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("invalid units, should be a non-negative integer with an optional K or M")
	}
	return n * mult, nil
}

// Action is what a controller says of a request.
type Action int

// Actions of [Controller.Control].
const (
	Pass Action = iota
	Delay
	Reject
)

// Controller applies one Spec to one partition. Safe for concurrent use.
type Controller struct {
	mu                      sync.Mutex
	delayUnits, rejectUnits int64 // per partition, 0 = none
	delay, rejectDelay      time.Duration
	second                  int64
	cur                     int64
}

// NewController makes the controller of a partition of a table of partitionCount
// partitions (at least 1).
func NewController(sp Spec, partitionCount int) *Controller {
	partitionCount = max(partitionCount, 1)
	c := &Controller{delay: sp.Delay, rejectDelay: sp.RejectDelay}
	if sp.DelayUnits > 0 {
		c.delayUnits = sp.DelayUnits/int64(partitionCount) + 1
	}
	if sp.RejectUnits > 0 {
		c.rejectUnits = sp.RejectUnits/int64(partitionCount) + 1
	}
	return c
}

// Control counts units of a request at now and says what to do with it, and how long to
// hold it first: min(the term's ms, clientTimeout/2) (the term's ms when clientTimeout is 0).
// A rejected request's units are not counted.
func (c *Controller) Control(now time.Time, clientTimeout time.Duration, units int64) (Action, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := now.Unix(); s != c.second {
		c.second, c.cur = s, 0
	}
	c.cur += units
	hold := func(d time.Duration) time.Duration {
		if clientTimeout > 0 {
			return min(d, clientTimeout/2)
		}
		return d
	}
	if c.rejectUnits > 0 && c.cur > c.rejectUnits {
		c.cur -= units
		return Reject, hold(c.rejectDelay)
	}
	if c.delayUnits > 0 && c.cur > c.delayUnits {
		return Delay, hold(c.delay)
	}
	return Pass, 0
}

// Bucket is a token bucket of bytes per second, the read-by-size throttle of a partition.
// Safe for concurrent use.
type Bucket struct {
	mu     sync.Mutex
	rate   int64
	tokens float64
	last   time.Time
}

// NewBucket makes the bucket of a partition of a table of partitionCount partitions, full.
func NewBucket(tableRate int64, partitionCount int) *Bucket {
	r := tableRate/int64(max(partitionCount, 1)) + 1
	return &Bucket{rate: r, tokens: float64(r)}
}

func (b *Bucket) refillLocked(now time.Time) {
	if !b.last.IsZero() {
		b.tokens = min(float64(b.rate), b.tokens+now.Sub(b.last).Seconds()*float64(b.rate))
	}
	b.last = now
}

// Allow reports whether a read may start at now: the bucket is not empty.
func (b *Bucket) Allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(now)
	return b.tokens > 0
}

// Take takes n bytes of a read served (the bucket may go below empty: later reads wait).
func (b *Bucket) Take(now time.Time, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(now)
	b.tokens -= float64(n)
}
