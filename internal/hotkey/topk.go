package hotkey

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"time"
)

const (
	// MaxKeyBytes is how much of a hash key a [TopK] holds: a longer key is held by this
	// prefix, its length and its hash.
	MaxKeyBytes = 256
	// DefaultCapacity is the counters of a TopK made with capacity 0: keys with more than
	// 1/32 of the traffic are always held.
	DefaultCapacity = 32
)

// TopK estimates the heaviest hash keys of a stream (see the package documentation). Make
// it with [NewTopK]. Safe for concurrent use.
type TopK struct {
	mu    sync.Mutex
	slots []slot // len grows to cap; key buffers past len are kept for reuse
	total int64  // the weight observed in the current window
	start time.Time
	// prev is the last complete window.
	prev               []Entry
	prevTotal          int64
	prevStart, prevEnd time.Time
}

type slot struct {
	hash       uint64
	n          int    // the key's length
	key        []byte // its first MaxKeyBytes bytes
	count, err int64
}

// Entry is one key of a [Summary].
type Entry struct {
	// HashKey is the key, or its first MaxKeyBytes bytes when Len is larger.
	HashKey []byte
	Len     int
	// Count estimates the key's weight; it overestimates by at most Err.
	Count, Err int64
	hash       uint64
}

// Summary is what [TopK.Top] reports.
type Summary struct {
	// Entries are the heaviest keys, by Count, heaviest first.
	Entries []Entry
	// Total is the weight of every key observed over Span, the time since the start of the
	// last complete window (or of the current one, before any rotation).
	Total int64
	Span  time.Duration
}

// NewTopK returns a TopK of capacity counters (0: [DefaultCapacity]) whose first window
// starts at now.
func NewTopK(capacity int, now time.Time) *TopK {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &TopK{slots: make([]slot, 0, capacity), start: now}
}

// Observe counts weight (values below 1 count as 1) for hashKey, whose [Hash] is hash. It
// does not allocate once the counters' key buffers have grown; hashKey is not retained.
func (t *TopK) Observe(hash uint64, hashKey []byte, weight int64) {
	if weight < 1 {
		weight = 1
	}
	prefix := hashKey[:min(len(hashKey), MaxKeyBytes)]
	t.mu.Lock()
	t.total += weight
	for i := range t.slots {
		s := &t.slots[i]
		if s.hash == hash && s.n == len(hashKey) && bytes.Equal(s.key, prefix) {
			s.count += weight
			t.mu.Unlock()
			return
		}
	}
	var s *slot
	if n := len(t.slots); n < cap(t.slots) {
		t.slots = t.slots[:n+1]
		s = &t.slots[n]
		s.count, s.err = weight, 0
	} else {
		s = &t.slots[0]
		for i := 1; i < len(t.slots); i++ {
			if t.slots[i].count < s.count {
				s = &t.slots[i]
			}
		}
		s.err = s.count
		s.count += weight
	}
	s.hash, s.n = hash, len(hashKey)
	s.key = append(s.key[:0], prefix...)
	t.mu.Unlock()
}

// Rotate ends the current window at now: it becomes the last complete window, and a new one
// starts empty.
func (t *TopK) Rotate(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.prev = t.entriesLocked(t.prev[:0])
	t.prevTotal, t.prevStart, t.prevEnd = t.total, t.start, now
	t.slots = t.slots[:0]
	t.total, t.start = 0, now
}

// entriesLocked appends copies of the current window's counters to dst.
func (t *TopK) entriesLocked(dst []Entry) []Entry {
	for _, s := range t.slots {
		dst = append(dst, Entry{HashKey: bytes.Clone(s.key), Len: s.n, Count: s.count, Err: s.err, hash: s.hash})
	}
	return dst
}

// Top returns the k heaviest keys (all of them when k <= 0) of the last complete window and
// the current one together, as of now. The entries are copies.
func (t *TopK) Top(now time.Time, k int) Summary {
	t.mu.Lock()
	cur := t.entriesLocked(nil)
	prev := slices.Clone(t.prev)
	sum := Summary{Total: t.total + t.prevTotal, Span: now.Sub(t.start)}
	if !t.prevStart.IsZero() {
		sum.Span = now.Sub(t.prevStart)
	}
	t.mu.Unlock()
	for _, p := range prev {
		i := slices.IndexFunc(cur, func(e Entry) bool {
			return e.hash == p.hash && e.Len == p.Len && bytes.Equal(e.HashKey, p.HashKey)
		})
		if i < 0 {
			cur = append(cur, p)
			continue
		}
		cur[i].Count += p.Count
		cur[i].Err += p.Err
	}
	slices.SortStableFunc(cur, func(a, b Entry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return bytes.Compare(a.HashKey, b.HashKey)
	})
	if k > 0 && len(cur) > k {
		cur = cur[:k]
	}
	sum.Entries = cur
	return sum
}
