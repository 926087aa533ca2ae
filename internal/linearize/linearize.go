// Package linearize records what clients did to a few keys of a table and checks the history
// for linearizability with porcupine, against a model of a map from keys to values in which
// every operation (get, set, incr, check-and-set) touches one key.
//
// A [Recorder] is shared by the clients of one test: each runs operations through
// [Recorder.Run] (or reports them with [Recorder.Add]), and once they have stopped
// [Recorder.Check] decides. A call that failed is recorded with an unknown outcome: a failed
// read changes nothing and is dropped, a failed write may have taken effect at any time after
// its call. The chaos tests (internal/chaos) and the elastic tests under load (the root
// package and internal/testcluster) use it.
//
//	rec := linearize.NewRecorder()
//	go func() { _ = rec.Run(ctx, linearize.Ours(tb), 0, linearize.RandomOp(rng, keys)) }()
//	...
//	if res, _ := rec.Check(keys, time.Minute); res != porcupine.Ok { t.Fatal(res) }
package linearize

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gopegasus/pegasus"
)

// Input is one operation on one key.
type Input struct {
	Op     string // "get", "set", "incr" or "cas"
	Key    string
	Value  string // set: the value; cas: the new value
	Expect string // cas: the value expected
	Delta  int64  // incr
}

// Output is what an operation returned.
type Output struct {
	Unknown  bool // the call failed or timed out: it may or may not have happened
	Value    string
	Found    bool  // get: the key had a value
	OK       bool  // cas: the value was set
	NewValue int64 // incr
}

// state is the model's value of one key.
type state struct {
	value  string
	exists bool
}

// Model is the porcupine model of the operations: a map of keys to values, partitioned by
// key. An incr of a value that is not a number fails and changes nothing, as the servers'.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(Input).Key
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(byKey))
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return state{} },
	Step: func(st, input, output any) (bool, any) {
		s, in, out := st.(state), input.(Input), output.(Output)
		switch in.Op {
		case "get":
			return out.Found == s.exists && (!s.exists || out.Value == s.value), s
		case "set":
			return true, state{value: in.Value, exists: true}
		case "incr":
			old := int64(0)
			if s.exists && s.value != "" {
				n, err := strconv.ParseInt(s.value, 10, 64)
				if err != nil {
					return out.Unknown, s
				}
				old = n
			}
			next := state{value: strconv.FormatInt(old+in.Delta, 10), exists: true}
			return out.Unknown || out.NewValue == old+in.Delta, next
		case "cas":
			pass := s.exists && s.value == in.Expect
			if !out.Unknown && out.OK != pass {
				return false, s
			}
			if pass {
				return true, state{value: in.Value, exists: true}
			}
			return true, s
		}
		return false, s
	},
	Equal: func(a, b any) bool { return a.(state) == b.(state) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		return fmt.Sprintf("%s(%s %q %q %d) -> %+v", in.Op, in.Key, in.Value, in.Expect, in.Delta, out)
	},
}

// Table is what a Recorder drives: a table of our client ([Ours]), or of a client that
// reacts to errors as the official go-client does (testcluster.GoTable).
type Table interface {
	Get(ctx context.Context, hashKey, sortKey []byte) ([]byte, error)
	Set(ctx context.Context, hashKey, sortKey, value []byte) error
	Incr(ctx context.Context, hashKey, sortKey []byte, delta int64) (int64, error)
	// CheckAndSet sets the record to value if its value is expect, and reports whether it did.
	CheckAndSet(ctx context.Context, hashKey, sortKey, expect, value []byte) (bool, error)
}

// ours is a table of our client as a Table.
type ours struct{ pegasus.TableConnector }

// Ours returns tb as a Table.
func Ours(tb pegasus.TableConnector) Table { return ours{tb} }

func (t ours) CheckAndSet(ctx context.Context, h, s, expect, value []byte) (bool, error) {
	res, err := t.TableConnector.CheckAndSet(ctx, h, s, pegasus.CheckTypeBytesEqual, expect, s, value, nil)
	return err == nil && res.SetSucceed, err
}

// SortKey is the sort key of every record a Recorder reads and writes.
var SortKey = []byte("s")

// Recorder collects the history of all clients of a test. Safe for concurrent use.
type Recorder struct {
	// CallTimeout bounds each call of Run (default 3 s).
	CallTimeout time.Duration
	// Refused, if set, tells the errors of calls that provably had no effect (the server
	// refused them before they could be applied, such as a split's ERR_SPLITTING): Run
	// leaves those calls out of the history instead of recording them with an unknown
	// outcome, which makes the check stricter and much cheaper. It is given the operation
	// and the call's error.
	Refused func(in Input, err error) bool

	start  time.Time
	acked  atomic.Int64
	failed atomic.Int64
	mu     sync.Mutex
	ops    []porcupine.Operation
}

// NewRecorder returns an empty Recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the Recorder's clock: nanoseconds since it was made.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Acked returns how many operations succeeded.
func (r *Recorder) Acked() int64 { return r.acked.Load() }

// Failed returns how many operations failed or timed out.
func (r *Recorder) Failed() int64 { return r.failed.Load() }

// Len returns the number of operations in the history.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Add records one operation of client, called at call and returned at ret (as [Recorder.Now]
// counts). A failed read is not recorded; a failed write is, as returning never.
func (r *Recorder) Add(client int, in Input, out Output, call, ret int64) {
	if out.Unknown {
		r.failed.Add(1)
		if in.Op == "get" {
			return
		}
		ret = math.MaxInt64
	} else {
		r.acked.Add(1)
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

// Run performs in through tb as client, records it, and returns the call's error.
func (r *Recorder) Run(ctx context.Context, tb Table, client int, in Input) error {
	timeout := r.CallTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	call := r.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := []byte(in.Key)
	var out Output
	var err error
	switch in.Op {
	case "get":
		var v []byte
		v, err = tb.Get(cctx, h, SortKey)
		out.Value, out.Found = string(v), v != nil
	case "set":
		err = tb.Set(cctx, h, SortKey, []byte(in.Value))
	case "incr":
		out.NewValue, err = tb.Incr(cctx, h, SortKey, in.Delta)
	case "cas":
		out.OK, err = tb.CheckAndSet(cctx, h, SortKey, []byte(in.Expect), []byte(in.Value))
	default:
		return fmt.Errorf("linearize: unknown operation %q", in.Op)
	}
	if err != nil && r.Refused != nil && r.Refused(in, err) {
		r.failed.Add(1)
		return err
	}
	out.Unknown = err != nil
	r.Add(client, in, out, call, r.Now())
	return err
}

// RandomOp draws an operation on one of keys: 40 % gets, 20 % sets, 20 % incrs, 20 %
// check-and-sets, with values from a small range so that they collide.
func RandomOp(rng *rand.Rand, keys []string) Input {
	in := Input{Key: keys[rng.IntN(len(keys))]}
	switch n := rng.IntN(10); {
	case n < 4:
		in.Op = "get"
	case n < 6:
		in.Op, in.Value = "set", strconv.Itoa(rng.IntN(100))
	case n < 8:
		in.Op, in.Delta = "incr", int64(1+rng.IntN(5))
	default:
		in.Op, in.Expect, in.Value = "cas", strconv.Itoa(rng.IntN(100)), strconv.Itoa(rng.IntN(100))
	}
	return in
}

// KeyResult is the check of one key's history.
type KeyResult struct {
	Key    string
	Ops    int
	Took   time.Duration
	Result porcupine.CheckResult
	// Visualization is the HTML file porcupine wrote for an Illegal history ("" if none).
	Visualization string
}

// Check checks the history key by key (every operation touches one key, so the history is
// linearizable if each key's is), stopping at the first key that is not, with at most
// timeout for each (0: no limit). Keys with no operation are Ok; operations on keys not in
// keys are not checked. The keys are checked one after the other because the checker's
// memory grows with the square of a key's history, and Check drops the history it checked,
// so call it once the clients have stopped. For an Illegal key it writes porcupine's
// visualization to the system's temporary directory (outside a test's, which is removed at
// its end). It returns the results so far and the overall result: Illegal if any key is,
// else Unknown if any check timed out, else Ok.
func (r *Recorder) Check(keys []string, timeout time.Duration) (porcupine.CheckResult, []KeyResult) {
	r.mu.Lock()
	byKey := map[string][]porcupine.Operation{}
	for _, op := range r.ops {
		k := op.Input.(Input).Key
		byKey[k] = append(byKey[k], op)
	}
	r.ops = nil
	r.mu.Unlock()
	res := porcupine.Ok
	var out []KeyResult
	for _, k := range keys {
		start := time.Now()
		cr, info := porcupine.CheckOperationsVerbose(Model, byKey[k], timeout)
		kr := KeyResult{Key: k, Ops: len(byKey[k]), Took: time.Since(start), Result: cr}
		delete(byKey, k)
		if cr == porcupine.Illegal {
			f := filepath.Join(os.TempDir(), fmt.Sprintf("pegasus-linearize-%d-%d.html", os.Getpid(), time.Now().UnixNano()))
			if err := porcupine.VisualizePath(Model, info, f); err == nil {
				kr.Visualization = f
			}
			return porcupine.Illegal, append(out, kr)
		}
		if cr != porcupine.Ok {
			res = cr
		}
		out = append(out, kr)
	}
	return res, out
}
