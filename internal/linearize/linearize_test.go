package linearize

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// memTable is a table in memory, one lock around it: linearizable, unless staleAfter > 0, when
// every read after the staleAfter-th one returns what the key held before its last write (a
// replica that missed the last write), or loseEvery > 0, when every loseEvery-th write is
// acknowledged and dropped.
type memTable struct {
	mu         sync.Mutex
	vals, prev map[string]string
	reads      int
	writes     int
	staleAfter int
	loseEvery  int
}

func newMemTable() *memTable { return &memTable{vals: map[string]string{}, prev: map[string]string{}} }

func (m *memTable) Get(_ context.Context, h, _ []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	vals := m.vals
	if m.staleAfter > 0 && m.reads > m.staleAfter {
		vals = m.prev
	}
	v, ok := vals[string(h)]
	if !ok {
		return nil, nil
	}
	return []byte(v), nil
}

// putLocked writes v at k, or drops it when the table loses this write.
func (m *memTable) putLocked(k, v string) {
	m.writes++
	if m.loseEvery > 0 && m.writes%m.loseEvery == 0 {
		return
	}
	if old, ok := m.vals[k]; ok {
		m.prev[k] = old
	}
	m.vals[k] = v
}

func (m *memTable) Set(_ context.Context, h, _, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putLocked(string(h), string(v))
	return nil
}

func (m *memTable) Incr(_ context.Context, h, _ []byte, d int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := int64(0)
	if v, ok := m.vals[string(h)]; ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, errors.New("not a number")
		}
		old = n
	}
	m.putLocked(string(h), strconv.FormatInt(old+d, 10))
	return old + d, nil
}

func (m *memTable) CheckAndSet(_ context.Context, h, _, expect, v []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.vals[string(h)]; !ok || cur != string(expect) {
		return false, nil
	}
	m.putLocked(string(h), string(v))
	return true, nil
}

// runClients runs 4 clients of random operations on keys through tb, n operations each.
func runClients(t *testing.T, rec *Recorder, tb Table, keys []string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for cl := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 1))
			for range n {
				if err := rec.Run(t.Context(), tb, cl, RandomOp(rng, keys)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The recorder's history of a linearizable table checks Ok; that of a table serving stale
// reads, or losing acknowledged writes, checks Illegal: the check can fail.
func TestRecorderCheck(t *testing.T) {
	keys := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name  string
		table *memTable
		want  porcupine.CheckResult
	}{
		{"linearizable", newMemTable(), porcupine.Ok},
		{"stale reads", &memTable{vals: map[string]string{}, prev: map[string]string{}, staleAfter: 200}, porcupine.Illegal},
		{"lost writes", &memTable{vals: map[string]string{}, prev: map[string]string{}, loseEvery: 50}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewRecorder()
			runClients(t, rec, tc.table, keys, 500)
			if got := rec.Len(); got == 0 || rec.Acked() != 2000 {
				t.Fatalf("recorded %d operations, %d acknowledged", got, rec.Acked())
			}
			res, per := rec.Check(keys, time.Minute)
			if res != tc.want {
				t.Fatalf("check: %s, want %s (%+v)", res, tc.want, per)
			}
			if res == porcupine.Illegal {
				last := per[len(per)-1]
				if last.Result != porcupine.Illegal || last.Visualization == "" {
					t.Fatalf("the illegal key's result: %+v", last)
				}
				_ = os.Remove(last.Visualization)
			}
			if rec.Len() != 0 {
				t.Fatal("the checked history was kept")
			}
		})
	}
}

// Hand-made histories: a read that misses a write acknowledged before it began is illegal; a
// write that failed may or may not have happened, so a read that sees it, or one that does not,
// are both fine; a failed read is not recorded.
func TestRecorderUnknownOutcomes(t *testing.T) {
	set := func(v string) Input { return Input{Op: "set", Key: "k", Value: v} }
	get := Input{Op: "get", Key: "k"}
	for _, tc := range []struct {
		name string
		add  func(r *Recorder)
		want porcupine.CheckResult
	}{
		{"stale read", func(r *Recorder) {
			r.Add(0, set("1"), Output{}, 0, 10)
			r.Add(0, set("2"), Output{}, 20, 30)
			r.Add(1, get, Output{Found: true, Value: "1"}, 40, 50)
		}, porcupine.Illegal},
		{"read of nothing after a write", func(r *Recorder) {
			r.Add(0, set("1"), Output{}, 0, 10)
			r.Add(1, get, Output{}, 20, 30)
		}, porcupine.Illegal},
		{"failed write seen", func(r *Recorder) {
			r.Add(0, set("1"), Output{}, 0, 10)
			r.Add(0, set("2"), Output{Unknown: true}, 20, 30)
			r.Add(1, get, Output{Found: true, Value: "2"}, 100, 110)
			r.Add(1, get, Output{Found: true, Value: "2"}, 120, 130)
		}, porcupine.Ok},
		{"failed write not seen", func(r *Recorder) {
			r.Add(0, set("1"), Output{}, 0, 10)
			r.Add(0, set("2"), Output{Unknown: true}, 20, 30)
			r.Add(1, get, Output{Found: true, Value: "1"}, 100, 110)
		}, porcupine.Ok},
		{"failed read dropped", func(r *Recorder) {
			r.Add(0, set("1"), Output{}, 0, 10)
			r.Add(1, get, Output{Unknown: true}, 20, 30)
		}, porcupine.Ok},
		{"cas and incr", func(r *Recorder) {
			r.Add(0, set("5"), Output{}, 0, 10)
			r.Add(0, Input{Op: "cas", Key: "k", Expect: "5", Value: "7"}, Output{OK: true}, 20, 30)
			r.Add(1, Input{Op: "incr", Key: "k", Delta: 2}, Output{NewValue: 9}, 40, 50)
			r.Add(1, Input{Op: "cas", Key: "k", Expect: "7", Value: "1"}, Output{OK: true}, 60, 70)
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRecorder()
			tc.add(r)
			res, per := r.Check([]string{"k"}, time.Minute)
			if res != tc.want {
				t.Fatalf("%s, want %s", res, tc.want)
			}
			for _, kr := range per {
				_ = os.Remove(kr.Visualization)
			}
		})
	}
}

// refusingTable refuses every set of the value "2" with errRefused, applying nothing.
type refusingTable struct{ *memTable }

var errRefused = errors.New("refused")

func (r refusingTable) Set(ctx context.Context, h, s, v []byte) error {
	if string(v) == "2" {
		return errRefused
	}
	return r.memTable.Set(ctx, h, s, v)
}

// A write whose error says it was refused is left out of the history: a later read of its
// value is then illegal, where with an unknown outcome it would pass.
func TestRecorderRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refused func(Input, error) bool
		want    porcupine.CheckResult
	}{
		{"unknown outcome", nil, porcupine.Ok},
		{"refused", func(_ Input, err error) bool { return errors.Is(err, errRefused) }, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRecorder()
			r.Refused = tc.refused
			tb := refusingTable{newMemTable()}
			if err := r.Run(t.Context(), tb, 0, Input{Op: "set", Key: "k", Value: "1"}); err != nil {
				t.Fatal(err)
			}
			if err := r.Run(t.Context(), tb, 0, Input{Op: "set", Key: "k", Value: "2"}); !errors.Is(err, errRefused) {
				t.Fatalf("refused set: %v", err)
			}
			// A read that claims the refused write took effect (a lying server).
			r.Add(1, Input{Op: "get", Key: "k"}, Output{Found: true, Value: "2"}, r.Now(), r.Now()+1)
			if r.Failed() != 1 {
				t.Fatalf("%d failed calls counted", r.Failed())
			}
			res, per := r.Check([]string{"k"}, time.Minute)
			if res != tc.want {
				t.Fatalf("%s, want %s", res, tc.want)
			}
			for _, kr := range per {
				_ = os.Remove(kr.Visualization)
			}
		})
	}
}
