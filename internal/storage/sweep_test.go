package storage

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

func TestSweepReclaimsOnlyExpired(t *testing.T) {
	d := openTest(t, nil)
	now := d.clock.epoch()
	d.putMany("e", "%05d", 2500, now+10) // more than one sweep chunk
	d.put("l", "forever", "v", 0)
	d.put("l", "later", "v", now+1000)
	d.clock.Advance(10 * time.Second)
	// The read clock says expired, but no batch has carried that time yet: the apply clock
	// still says live, so nothing may be deleted.
	if n, err := d.Sweep(); err != nil || n != 0 {
		t.Fatalf("sweep before the apply clock moved: %d %v", n, err)
	}
	d.apply(0) // an empty batch at the current time advances the apply clock
	applied := d.LastAppliedIndex()
	n, err := d.Sweep()
	if err != nil || n != 2500 {
		t.Fatalf("swept %d, %v; want 2500", n, err)
	}
	if d.LastAppliedIndex() != applied {
		t.Fatal("sweep changed the applied index")
	}
	m := d.Metrics()
	if m.ExpiredReclaimed != 2500 || m.SweepPasses != 2 {
		t.Fatalf("metrics %+v", m)
	}
	for _, s := range []string{"forever", "later"} {
		if _, c := d.get("l", s); c != wire.StatusOK {
			t.Fatalf("live record %s swept", s)
		}
	}
	it, _ := d.pdb.NewIter(nil)
	defer it.Close()
	count := 0
	for it.First(); it.Valid(); it.Next() {
		count++
	}
	if count != 4 { // 2 live records + 2 metadata records
		t.Fatalf("%d physical records left", count)
	}
}

// A write that re-creates a key between the sweeper's scan and its delete must survive.
func TestSweepDoesNotDeleteRecreated(t *testing.T) {
	d := openTest(t, nil)
	now := d.clock.epoch()
	k := key.Encode([]byte("h"), []byte("s"))
	d.put("h", "s", "old", now+1)
	d.clock.Advance(time.Second)
	d.apply(0)
	_, cands, err := d.sweepScan(userKeyMin)
	if err != nil || len(cands) != 1 {
		t.Fatalf("candidates %q %v", cands, err)
	}
	d.apply(0, Mutation{Put: &PutRequest{Key: k, Value: []byte("new")}})
	if n, err := d.sweepDelete(cands); err != nil || n != 0 {
		t.Fatalf("deleted %d %v", n, err)
	}
	if v, c := d.get("h", "s"); v != "new" || c != wire.StatusOK {
		t.Fatalf("re-created record lost: %q %d", v, c)
	}
}

// Concurrent writers and the background sweeper: every live value written must stay.
func TestSweepConcurrentWithApply(t *testing.T) {
	clock := newFakeClock()
	d := openTest(t, func(o *Options) {
		o.Now = clock.Now
		o.SweepInterval = time.Millisecond
		o.ScannerIdleTimeout = 4 * time.Millisecond
		o.SweepRate = 1 << 30
	})
	d.clock = clock
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = d.Sweep()
			}
		}
	})
	for round := range 200 {
		now := clock.epoch()
		var ms []Mutation
		for i := range 20 {
			// Half the keys are written already expired (at the batch time), half live.
			e := now
			if i%2 == 0 {
				e = 0
			}
			ms = append(ms, Mutation{Put: &PutRequest{Key: key.Encode([]byte("h"), fmt.Appendf(nil, "%02d", i)),
				Value: fmt.Appendf(nil, "%d", round), ExpireTS: e}})
		}
		d.apply(0, ms...)
		for i := 0; i < 20; i += 2 {
			if v, c := d.get("h", fmt.Sprintf("%02d", i)); c != wire.StatusOK || v != fmt.Sprint(round) {
				t.Fatalf("round %d key %d: %q %d", round, i, v, c)
			}
		}
		clock.Advance(time.Second)
	}
	close(stop)
	wg.Wait()
	if d.Metrics().ExpiredReclaimed == 0 {
		t.Fatal("sweeper reclaimed nothing")
	}
}
