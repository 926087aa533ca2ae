package storage

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// keyIn returns n hash keys of partition pidx of count.
func keysIn(pidx, count, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		h := fmt.Sprintf("k%d", i)
		if key.Partition(key.Hash([]byte(h)), count) == pidx {
			out = append(out, h)
		}
	}
	return out
}

// rawKeys lists every user key in the store, scan or not.
func rawKeys(t *testing.T, d *DB) []string {
	t.Helper()
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: userKeyMin})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for it.First(); it.Valid(); it.Next() {
		h, _, _ := key.Decode(it.Key())
		out = append(out, string(h))
	}
	return out
}

func waitPurged(t *testing.T, d *DB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !d.Purged() {
		if time.Now().After(deadline) {
			t.Fatal("the purge of the other half did not finish")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A parent's store cuts over (a batch recording the doubled count): writes of the child's
// half are refused, validating scans skip it whatever the env says, a background pass
// deletes it, and all of that survives a reopen.
func TestSplitParentCutOver(t *testing.T) {
	dir := t.TempDir()
	d := openTest(t, func(o *Options) { o.Dir, o.PartitionIndex, o.PartitionCount = dir, 1, 4 })
	mine, theirs := keysIn(1, 8, 20), keysIn(5, 8, 20)
	for _, h := range append(slices.Clone(mine), theirs...) {
		d.put(h, "s", "v", 0)
	}
	d.index++
	if _, err := d.Apply(&Batch{Index: d.index, Time: d.clock.Now(), PartitionCount: 8}); err != nil {
		t.Fatal(err)
	}
	if d.PartitionCount() != 8 {
		t.Fatalf("partition count %d", d.PartitionCount())
	}
	res := d.apply(0, Mutation{Put: &PutRequest{Key: key.Encode([]byte(theirs[0]), []byte("x")), Value: []byte("v")}},
		Mutation{Put: &PutRequest{Key: key.Encode([]byte(mine[0]), []byte("x")), Value: []byte("v")}})
	if !res[0].Misrouted || res[0].Error != wire.StatusInvalidArgument || res[1].Misrouted || res[1].Error != wire.StatusOK {
		t.Fatalf("writes after the cut-over: %+v", res)
	}
	if _, code := d.get(theirs[0], "x"); code != wire.StatusNotFound {
		t.Fatal("a misrouted write was applied")
	}
	ks, _ := scanAll(t, d, fullScan())
	for _, k := range ks {
		h, _, _ := strings.Cut(k, "/")
		if !slices.Contains(mine, h) {
			t.Fatalf("validating scan returned %s of the other half", k)
		}
	}
	waitPurged(t, d.DB)
	for _, h := range rawKeys(t, d.DB) {
		if !slices.Contains(mine, h) {
			t.Fatalf("%s of the other half still stored after the purge", h)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(Options{Dir: dir, PartitionIndex: 1, PartitionCount: 4, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.PartitionCount() != 8 || !d2.Purged() || d2.LastAppliedIndex() != d.index {
		t.Fatalf("reopened: count %d purged %v applied %d", d2.PartitionCount(), d2.Purged(), d2.LastAppliedIndex())
	}
}

// A child's store is a checkpoint of its parent's that records the doubled count itself
// (Own): the parent's half is refused, then deleted.
func TestSplitChildOwn(t *testing.T) {
	parent := openTest(t, func(o *Options) { o.PartitionIndex, o.PartitionCount = 2, 4 })
	mine, theirs := keysIn(6, 8, 30), keysIn(2, 8, 30)
	for _, h := range append(slices.Clone(mine), theirs...) {
		parent.put(h, "s", "v", 0)
	}
	dir := filepath.Join(t.TempDir(), "child")
	at, err := parent.Checkpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	child, err := Open(Options{Dir: dir, PartitionIndex: 6, PartitionCount: 8, SweepInterval: -1, NoWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer child.Close()
	if err := child.Own(8); err != nil {
		t.Fatal(err)
	}
	if child.LastAppliedIndex() != at {
		t.Fatalf("child applied %d, checkpoint at %d", child.LastAppliedIndex(), at)
	}
	res, err := child.Apply(&Batch{Index: at + 1, Mutations: []Mutation{
		{MultiPut: &MultiPutRequest{HashKey: []byte(theirs[0]), KVs: []KeyValue{{Key: []byte("y"), Value: []byte("v")}}}},
		{MultiPut: &MultiPutRequest{HashKey: []byte(mine[0]), KVs: []KeyValue{{Key: []byte("y"), Value: []byte("v")}}}},
	}})
	if err != nil || !res[0].Misrouted || res[1].Misrouted {
		t.Fatalf("child writes: %+v %v", res, err)
	}
	waitPurged(t, child)
	got := rawKeys(t, child)
	for _, h := range got {
		if !slices.Contains(mine, h) {
			t.Fatalf("%s of the parent's half still in the child", h)
		}
	}
	if len(got) != len(mine)+1 {
		t.Fatalf("child holds %d records, want %d", len(got), len(mine)+1)
	}
	if err := child.Own(4); err == nil {
		t.Fatal("Own accepted a count that is not a multiple of the recorded one")
	}
}

// A store written before the split state existed (a 12-byte applied record) opens.
func TestSplitOldAppliedRecord(t *testing.T) {
	dir := t.TempDir()
	d := openTest(t, func(o *Options) { o.Dir = dir })
	d.put("h", "s", "v", 0)
	rec := []byte{0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9}
	if err := d.pdb.Set(metaAppliedKey, rec, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.LastAppliedIndex() != 7 || d2.PartitionCount() != 0 || !d2.Purged() {
		t.Fatalf("old record: applied %d count %d", d2.LastAppliedIndex(), d2.PartitionCount())
	}
}
