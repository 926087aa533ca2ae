package storage

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

func TestPutGetRemove(t *testing.T) {
	d := openTest(t, nil)
	d.put("h", "s", "v1", 0)
	if v, c := d.get("h", "s"); c != wire.StatusOK || v != "v1" {
		t.Fatalf("get = %q, %d", v, c)
	}
	d.put("h", "empty", "", 0)
	if v, c := d.get("h", "empty"); c != wire.StatusOK || v != "" {
		t.Fatalf("get empty value = %q, %d", v, c)
	}
	r := d.apply(0, Mutation{Remove: &RemoveRequest{Key: key.Encode([]byte("h"), []byte("s"))}})
	if r[0].Error != wire.StatusOK {
		t.Fatalf("remove code %d", r[0].Error)
	}
	if _, c := d.get("h", "s"); c != wire.StatusNotFound {
		t.Fatalf("after remove code %d", c)
	}
	// Removing a missing key succeeds too.
	r = d.apply(0, Mutation{Remove: &RemoveRequest{Key: key.Encode([]byte("h"), []byte("nope"))}})
	if r[0].Error != wire.StatusOK {
		t.Fatalf("remove missing code %d", r[0].Error)
	}
	if got := d.LastAppliedIndex(); got != 4 {
		t.Fatalf("applied index %d, want 4", got)
	}
}

func TestValueLayoutVersion1(t *testing.T) {
	d := openTest(t, func(o *Options) { o.ClusterID = 3 })
	when := d.clock.Now()
	k := key.Encode([]byte("h"), []byte("s"))
	d.apply(0, Mutation{Put: &PutRequest{Key: k, Value: []byte("abc"), ExpireTS: 77}})
	raw, closer, err := d.pdb.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	want := []byte{0, 0, 0, 77}
	tag := uint64(when.UnixMicro())<<8 | 3<<1
	for i := 7; i >= 0; i-- {
		want = append(want, byte(tag>>(8*i)))
	}
	want = append(want, "abc"...)
	if !bytes.Equal(raw, want) {
		t.Fatalf("stored %x, want %x", raw, want)
	}
	if d.DataVersion() != 1 {
		t.Fatalf("data version %d", d.DataVersion())
	}
}

func TestMalformedWritesRejected(t *testing.T) {
	d := openTest(t, nil)
	long := bytes.Repeat([]byte("x"), 65535)
	for name, m := range map[string]Mutation{
		"put short key":        {Put: &PutRequest{Key: []byte{0}, Value: []byte("v")}},
		"put empty key":        {Put: &PutRequest{Key: nil, Value: []byte("v")}},
		"put overflowing len":  {Put: &PutRequest{Key: []byte{0, 5, 'a'}, Value: []byte("v")}},
		"remove short key":     {Remove: &RemoveRequest{Key: []byte{1}}},
		"incr overflowing len": {Incr: &IncrRequest{Key: []byte{0, 9, 'a'}, Increment: 1}},
		"multi_put empty":      {MultiPut: &MultiPutRequest{HashKey: []byte("h")}},
		"multi_put long hash":  {MultiPut: &MultiPutRequest{HashKey: long, KVs: []KeyValue{{Key: []byte("s"), Value: []byte("v")}}}},
		"multi_remove empty":   {MultiRemove: &MultiRemoveRequest{HashKey: []byte("h")}},
		"multi_remove long":    {MultiRemove: &MultiRemoveRequest{HashKey: long, SortKeys: [][]byte{[]byte("s")}}},
		"cas long hash":        {CheckAndSet: &CheckAndSetRequest{HashKey: long}},
		"cam long hash":        {CheckAndMutate: &CheckAndMutateRequest{HashKey: long, Mutates: []Mutate{{Op: idl.MutatePut}}}},
		"nothing set":          {},
		"two set":              {Put: &PutRequest{Key: []byte{0, 0}}, Remove: &RemoveRequest{Key: []byte{0, 0}}},
	} {
		before := d.LastAppliedIndex()
		r := d.apply(0, m)
		if r[0].Error != wire.StatusInvalidArgument || r[0].Count != 0 {
			t.Errorf("%s: result %+v, want code 4", name, r[0])
		}
		if d.LastAppliedIndex() != before+1 {
			t.Errorf("%s: applied index did not advance", name)
		}
	}
	res, err := d.GetScanner(&GetScannerRequest{StartKey: nil, StopKey: []byte{0xFF, 0xFF}, StartInclusive: true})
	if err != nil || len(res.KVs) != 0 || res.ContextID != ContextComplete {
		t.Fatalf("scan after rejected writes: %+v %v", res, err)
	}
	// An empty hash key is a valid key everywhere.
	d.apply(0, Mutation{MultiPut: &MultiPutRequest{HashKey: nil, KVs: []KeyValue{{Key: []byte("s"), Value: []byte("v")}}}})
	if v, c := d.get("", "s"); c != wire.StatusOK || v != "v" {
		t.Fatalf("empty hash key get = %q %d", v, c)
	}
	// Metadata keys are invisible to Get.
	for _, k := range [][]byte{nil, {0}} {
		if _, c, _ := d.Get(k); c != wire.StatusNotFound {
			t.Fatalf("Get(%x) code %d", k, c)
		}
	}
}

func TestStaleIndex(t *testing.T) {
	d := openTest(t, nil)
	if _, err := d.Apply(&Batch{Index: 5, Time: d.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []uint64{0, 4, 5} {
		if _, err := d.Apply(&Batch{Index: idx, Time: d.clock.Now()}); !errors.Is(err, ErrStaleIndex) {
			t.Fatalf("index %d: err %v", idx, err)
		}
	}
}

func TestReopenKeepsIndexAndData(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	db, err := Open(Options{Dir: dir, Now: clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	k := key.Encode([]byte("h"), []byte("s"))
	if _, err := db.Apply(&Batch{Index: 9, Time: clock.Now(), Mutations: []Mutation{{Put: &PutRequest{Key: k, Value: []byte("v")}}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(Options{Dir: dir, Now: clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.LastAppliedIndex() != 9 {
		t.Fatalf("index %d", db.LastAppliedIndex())
	}
	if v, c, _ := db.Get(k); c != wire.StatusOK || string(v) != "v" {
		t.Fatalf("get %q %d", v, c)
	}
}

func TestCheckpoint(t *testing.T) {
	d := openTest(t, nil)
	d.put("h", "a", "1", 0)
	d.put("h", "b", "2", 0)
	dir := filepath.Join(t.TempDir(), "ckpt")
	idx, err := d.Checkpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if idx != 2 {
		t.Fatalf("checkpoint index %d", idx)
	}
	d.put("h", "c", "3", 0)
	c, err := Open(Options{Dir: dir, Now: d.clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.LastAppliedIndex() != 2 {
		t.Fatalf("opened checkpoint index %d", c.LastAppliedIndex())
	}
	n, code, err := c.SortKeyCount([]byte("h"))
	if err != nil || code != wire.StatusOK || n != 2 {
		t.Fatalf("count in checkpoint = %d %d %v", n, code, err)
	}
	if _, err := d.Checkpoint(dir); err == nil {
		t.Fatal("checkpoint into an existing dir succeeded")
	}
}

func TestManualCompaction(t *testing.T) {
	d := openTest(t, nil)
	if st := d.CompactionStatus(); st.State != CompactionIdle {
		t.Fatalf("initial state %v", st.State)
	}
	for i := range 100 {
		d.put("h", string(rune('a'+i%26))+string(rune('a'+i/26)), "v", 0)
	}
	if !d.StartCompaction() {
		t.Fatal("compaction did not start")
	}
	// The compaction goroutine is the only one in the wait group (no sweeper in tests).
	d.wg.Wait()
	st := d.CompactionStatus()
	if st.State != CompactionFinished || st.Err != nil || st.Start.IsZero() || st.Finish.IsZero() {
		t.Fatalf("status %+v", st)
	}
	if m := d.Metrics(); m.Compactions == 0 || m.TableFiles == 0 || m.DiskBytes == 0 || m.AppliedIndex != 100 {
		t.Fatalf("metrics after compaction %+v", m)
	}
	if v, c := d.get("h", "aa"); c != wire.StatusOK || v != "v" {
		t.Fatalf("get after compaction %q %d", v, c)
	}
}

func TestTTL(t *testing.T) {
	d := openTest(t, nil)
	now := d.clock.epoch()
	d.put("h", "forever", "v", 0)
	d.put("h", "soon", "v", now+10)
	k := func(s string) []byte { return key.Encode([]byte("h"), []byte(s)) }
	if ttl, c, _ := d.TTL(k("forever")); c != wire.StatusOK || ttl != -1 {
		t.Fatalf("ttl forever %d %d", ttl, c)
	}
	if ttl, c, _ := d.TTL(k("soon")); c != wire.StatusOK || ttl != 10 {
		t.Fatalf("ttl soon %d %d", ttl, c)
	}
	if ttl, c, _ := d.TTL(k("missing")); c != wire.StatusNotFound || ttl != 0 {
		t.Fatalf("ttl missing %d %d", ttl, c)
	}
	d.clock.Advance(10 * time.Second)
	if _, c, _ := d.TTL(k("soon")); c != wire.StatusNotFound {
		t.Fatalf("ttl expired code %d", c)
	}
	if _, c := d.get("h", "soon"); c != wire.StatusNotFound {
		t.Fatalf("get expired code %d", c)
	}
	// Default TTL applies to writes with expire 0.
	d.apply(100, Mutation{Put: &PutRequest{Key: k("dflt"), Value: []byte("v")}})
	if ttl, c, _ := d.TTL(k("dflt")); c != wire.StatusOK || ttl != 100 {
		t.Fatalf("ttl default %d %d", ttl, c)
	}
}

func TestSyncApplied(t *testing.T) {
	d := openTest(t, nil)
	d.put("h", "s", "v", 0)
	if err := d.DB.SyncApplied(); err != nil {
		t.Fatal(err)
	}
	if err := d.DB.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.DB.SyncApplied(); err != ErrClosed {
		t.Fatalf("after close: %v", err)
	}
}

// Without a WAL, a checkpoint still holds everything applied (it flushes first), and data
// and applied index stay together.
func TestNoWALCheckpoint(t *testing.T) {
	db, err := Open(Options{Dir: t.TempDir(), SweepInterval: -1, NoWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := uint64(1); i <= 30; i++ {
		if _, err := db.Apply(crashBatch(i)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir() + "/cp"
	idx, err := db.Checkpoint(dir)
	if err != nil || idx != 30 {
		t.Fatalf("checkpoint: %d %v", idx, err)
	}
	if n := checkCrashState(t, dir); n != 30 {
		t.Fatalf("checkpoint opened at %d, want 30", n)
	}
	if _, err := Open(Options{Dir: t.TempDir(), NoWAL: true, SyncWrites: true}); err == nil {
		t.Fatal("NoWAL with SyncWrites accepted")
	}
}
