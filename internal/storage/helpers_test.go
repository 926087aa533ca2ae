package storage

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// fakeClock is an injectable clock for the read path.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Unix(EpochUnix+100_000_000, 0)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// epoch returns the clock in Pegasus epoch seconds.
func (c *fakeClock) epoch() int32 { return int32(EpochNow(c.Now())) }

// testDB opens a store in a temp dir with a fake clock and no background sweeper.
type testDB struct {
	*DB
	t     testing.TB
	clock *fakeClock
	index uint64
}

func openTest(t testing.TB, mod func(*Options)) *testDB {
	t.Helper()
	clock := newFakeClock()
	opts := Options{Dir: t.TempDir(), Now: clock.Now, SweepInterval: -1, ClusterID: 1}
	if mod != nil {
		mod(&opts)
	}
	db, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &testDB{DB: db, t: t, clock: clock}
}

// apply applies mutations as one batch at the next index with the fake clock's time.
func (d *testDB) apply(defaultTTL int32, ms ...Mutation) []WriteResult {
	d.t.Helper()
	d.index++
	res, err := d.Apply(&Batch{Index: d.index, Time: d.clock.Now(), DefaultTTL: defaultTTL, Mutations: ms})
	if err != nil {
		d.t.Fatalf("apply: %v", err)
	}
	return res
}

func (d *testDB) put(h, s, v string, expire int32) {
	d.t.Helper()
	r := d.apply(0, Mutation{Put: &PutRequest{Key: key.Encode([]byte(h), []byte(s)), Value: []byte(v), ExpireTS: expire}})
	if r[0].Error != wire.StatusOK {
		d.t.Fatalf("put %q/%q: code %d", h, s, r[0].Error)
	}
}

// putMany writes n records of hash key h in one multi_put, sort keys format applied to
// 0..n-1 (fmt.Appendf), value "x", expiring at expire (0: never).
func (d *testDB) putMany(h, format string, n int, expire int32) {
	kvs := make([]KeyValue, 0, n)
	for i := range n {
		kvs = append(kvs, KeyValue{Key: fmt.Appendf(nil, format, i), Value: []byte("x")})
	}
	d.apply(0, Mutation{MultiPut: &MultiPutRequest{HashKey: []byte(h), KVs: kvs, ExpireTS: expire}})
}

func (d *testDB) get(h, s string) (string, wire.Status) {
	d.t.Helper()
	v, code, err := d.Get(key.Encode([]byte(h), []byte(s)))
	if err != nil {
		d.t.Fatalf("get: %v", err)
	}
	return string(v), code
}
