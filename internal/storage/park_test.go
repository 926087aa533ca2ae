package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/wire"
)

// openFilesUnder counts the files this process holds open under dir.
func openFilesUnder(t *testing.T, dir string) int {
	t.Helper()
	return leakcheck.OpenFilesUnder(t, dir)
}

// A parked store holds no file open, and its next read reopens it and finds the data, the
// memtable's included (no WAL: parking flushed it); it survives a close and an open too.
func TestParkedStoreReopensOnRead(t *testing.T) {
	dir := t.TempDir()
	d := openTest(t, func(o *Options) { o.Dir = dir; o.NoWAL = true })
	for i := range 50 {
		d.put("h", fmt.Sprintf("s%02d", i), fmt.Sprintf("v%d", i), 0)
	}
	if n := openFilesUnder(t, dir); n == 0 {
		t.Fatal("an open store holds no file under its directory")
	}
	ok, err := d.Park()
	if !ok || err != nil {
		t.Fatalf("park: %v %v", ok, err)
	}
	if !d.Parked() {
		t.Fatal("not parked after Park")
	}
	if n := openFilesUnder(t, dir); n != 0 {
		t.Fatalf("a parked store holds %d files open", n)
	}
	m := d.Metrics() // does not reopen it
	if !d.Parked() || m.TableFiles == 0 || m.AppliedIndex != 50 {
		t.Fatalf("metrics of the parked store: parked %v, %+v", d.Parked(), m)
	}
	if v, code := d.get("h", "s07"); code != wire.StatusOK || v != "v7" {
		t.Fatalf("get after park: %q %d", v, code)
	}
	if d.Parked() {
		t.Fatal("still parked after a read")
	}
	if d.LastAppliedIndex() != 50 {
		t.Fatalf("applied %d", d.LastAppliedIndex())
	}
	// Written after the reopen, then parked and closed while parked: a new open finds it.
	d.put("h", "late", "x", 0)
	if ok, err := d.Park(); !ok || err != nil {
		t.Fatalf("second park: %v %v", ok, err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("close of a parked store: %v", err)
	}
	if _, _, err := d.Get(key.Encode([]byte("h"), []byte("s01"))); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	d2 := openTest(t, func(o *Options) { o.Dir = dir; o.NoWAL = true })
	if d2.LastAppliedIndex() != 51 {
		t.Fatalf("reopened at %d, want 51", d2.LastAppliedIndex())
	}
	if v, code := d2.get("h", "late"); code != wire.StatusOK || v != "x" {
		t.Fatalf("get after close and open: %q %d", v, code)
	}
}

// A scanner context holds the store open; once it is gone the store parks.
func TestScannerKeepsStoreOpen(t *testing.T) {
	d := openTest(t, func(o *Options) { o.NoWAL = true })
	for i := range 20 {
		d.put("h", fmt.Sprintf("s%02d", i), "v", 0)
	}
	r, err := d.GetScanner(&GetScannerRequest{StartKey: userKeyMin, StopKey: []byte{0xff, 0xff}, BatchSize: 5})
	if err != nil || r.ContextID <= 0 {
		t.Fatalf("get_scanner: %+v %v", r, err)
	}
	if ok, err := d.Park(); ok || err != nil {
		t.Fatalf("parked with a scanner context: %v %v", ok, err)
	}
	r, err = d.Scan(r.ContextID)
	if err != nil || len(r.KVs) != 5 {
		t.Fatalf("scan: %+v %v", r, err)
	}
	d.ClearScanner(r.ContextID)
	if ok, err := d.Park(); !ok || err != nil {
		t.Fatalf("park after the scan: %v %v", ok, err)
	}
}

// Checkpoints, sweeps and manual compactions of a parked store reopen it and work.
func TestParkedStoreCheckpointSweepCompact(t *testing.T) {
	d := openTest(t, func(o *Options) { o.NoWAL = true })
	d.put("h", "live", "v", 0)
	d.put("h", "dead", "v", d.clock.epoch()+10)
	d.clock.Advance(time.Minute)
	mustPark := func() {
		t.Helper()
		if ok, err := d.Park(); !ok || err != nil {
			t.Fatalf("park: %v %v", ok, err)
		}
	}
	mustPark()
	cp := filepath.Join(t.TempDir(), "cp")
	idx, err := d.Checkpoint(cp)
	if err != nil || idx != 2 {
		t.Fatalf("checkpoint: %d %v", idx, err)
	}
	c := openTest(t, func(o *Options) { o.Dir = cp })
	if v, code := c.get("h", "live"); code != wire.StatusOK || v != "v" {
		t.Fatalf("checkpoint's record: %q %d", v, code)
	}
	mustPark()
	d.index++
	if _, err := d.Apply(&Batch{Index: d.index, Time: d.clock.Now()}); err != nil { // the apply clock moves on
		t.Fatal(err)
	}
	mustPark()
	if n, err := d.Sweep(); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	mustPark()
	if !d.StartCompaction() {
		t.Fatal("compaction of a parked store did not start")
	}
	for d.CompactionStatus().State == CompactionRunning {
		time.Sleep(time.Millisecond)
	}
	if st := d.CompactionStatus(); st.Err != nil {
		t.Fatalf("compaction: %v", st.Err)
	}
	mustPark()
}

// Parking and reopening again and again leaves no files behind (OPTIONS, MANIFEST).
func TestParkCyclesLeaveNoFiles(t *testing.T) {
	dir := t.TempDir()
	d := openTest(t, func(o *Options) { o.Dir = dir; o.NoWAL = true })
	d.put("h", "s", "v", 0)
	count := func() int {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	if _, err := d.Park(); err != nil {
		t.Fatal(err)
	}
	first := count()
	for range 30 {
		if _, code := d.get("h", "s"); code != wire.StatusOK {
			t.Fatalf("get: %d", code)
		}
		if _, err := d.Park(); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n > first+2 {
		t.Fatalf("%d files after 30 park cycles, %d after the first", n, first)
	}
}

// A Parking parks the stores nobody uses: N idle stores then hold no file open, while one
// that is read again reopens and keeps its files.
func TestParkingBoundsFilesOfIdleStores(t *testing.T) {
	const n = 16
	base := t.TempDir()
	pk := NewParking(ParkingOptions{Idle: 40 * time.Millisecond})
	defer pk.Close()
	dbs := make([]*testDB, n)
	for i := range dbs {
		dbs[i] = openTest(t, func(o *Options) {
			o.Dir = filepath.Join(base, fmt.Sprint(i))
			o.NoWAL = true
			o.Parking = pk
		})
		dbs[i].put("h", "s", fmt.Sprint(i), 0)
	}
	// (Unless opening them took longer than the idle time: on a loaded machine some may
	// be parked already.)
	if open := openFilesUnder(t, base); open < n && pk.Stats().Parked == 0 {
		t.Fatalf("%d files open for %d open stores", open, n)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, pk.Stats())
			}
		}
	}
	waitFor("all parked", func() bool { return pk.Stats().Parked == n })
	if open := openFilesUnder(t, base); open != 0 {
		t.Fatalf("%d files open for %d parked stores", open, n)
	}
	// One store read every few milliseconds stays open; the others stay parked.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if v, code := dbs[3].get("h", "s"); code != wire.StatusOK || v != "3" {
				t.Errorf("get: %q %d", v, code)
				return
			}
		}
	})
	time.Sleep(300 * time.Millisecond) // several idle times
	open := openFilesUnder(t, filepath.Join(base, "3"))
	others := openFilesUnder(t, base) - open
	parked := dbs[3].Parked()
	close(stop)
	wg.Wait()
	if parked || open == 0 || others != 0 {
		t.Fatalf("busy store parked %v with %d files open; the idle ones hold %d", parked, open, others)
	}
	for i, d := range dbs {
		if v, code := d.get("h", "s"); code != wire.StatusOK || v != fmt.Sprint(i) {
			t.Fatalf("store %d: %q %d", i, v, code)
		}
	}
	st := pk.Stats()
	if st.Reopens < n || st.Parks < n || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("reopen: %d, mean %v, max %v", st.Reopens, st.ReopenTime/time.Duration(st.Reopens), st.ReopenMax)
}

// Parking races reads, writes, scans, checkpoints, sweeps, compactions and metrics: every
// operation answers as on an open store, no write is lost, and the race detector sees no
// unsynchronized access to the Pebble database the parking closes and reopens.
func TestParkConcurrentWithOperations(t *testing.T) {
	d := openTest(t, func(o *Options) { o.NoWAL = true })
	for i := range 100 {
		d.put(fmt.Sprintf("h%d", i%10), fmt.Sprintf("s%03d", i), "v", 0)
	}
	var mu sync.Mutex // serializes the writer's index
	stop := make(chan struct{})
	var wg sync.WaitGroup
	fail := make(chan error, 64)
	parks := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if ok, err := d.Park(); err != nil {
				fail <- err
				return
			} else if ok {
				parks++
			}
			time.Sleep(20 * time.Microsecond)
		}
	})
	for w := range 7 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(time.Duration(w+1) * 100 * time.Microsecond) // gaps the parking can take
				hk := []byte(fmt.Sprintf("h%d", n%10))
				var err error
				switch w {
				case 0:
					var v []byte
					var code wire.Status
					v, code, err = d.Get(key.Encode(hk, []byte(fmt.Sprintf("s%03d", n%10))))
					if err == nil && (code != wire.StatusOK || string(v) != "v") {
						err = fmt.Errorf("get: %q %d", v, code)
					}
				case 1:
					var r *MultiGetResult
					r, err = d.MultiGet(&MultiGetRequest{HashKey: hk})
					if err == nil && (r.Error != wire.StatusOK || len(r.KVs) < 10) {
						err = fmt.Errorf("multi_get: code %d, %d records", r.Error, len(r.KVs))
					}
				case 2:
					var r *ScanResult
					r, err = d.GetScanner(&GetScannerRequest{StartKey: key.Encode(hk, nil), StopKey: key.HashKeyEnd(hk), BatchSize: 3})
					for err == nil && r.ContextID > 0 {
						r, err = d.Scan(r.ContextID)
					}
				case 3:
					mu.Lock()
					d.index++
					idx := d.index
					_, err = d.Apply(&Batch{Index: idx, Time: d.clock.Now(), Mutations: []Mutation{{Put: &PutRequest{
						Key: key.Encode([]byte("w"), fmt.Appendf(nil, "%06d", idx)), Value: []byte("w")}}}})
					mu.Unlock()
				case 4:
					if n%20 == 0 {
						_, err = d.Checkpoint(filepath.Join(t.TempDir(), "cp"))
					}
				case 5:
					if n%50 == 0 {
						d.StartCompaction()
					}
					_ = d.Metrics()
					_, err = d.Sweep()
				case 6:
					err = d.SyncApplied()
				}
				if err != nil {
					fail <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Error(err)
	}
	if parks == 0 {
		t.Fatal("the store was never parked")
	}
	// Every acknowledged write is there, after a last park and a close and open.
	writes := d.index - 100
	if _, err := d.Park(); err != nil {
		t.Fatal(err)
	}
	dir := d.opts.Dir
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := openTest(t, func(o *Options) { o.Dir = dir; o.NoWAL = true })
	c, code, err := d2.SortKeyCount([]byte("w"))
	if err != nil || code != wire.StatusOK || uint64(c) != writes {
		t.Fatalf("%d writes found, %d acknowledged (%d %v)", c, writes, code, err)
	}
	t.Logf("%d parks, %d writes", parks, writes)
}

// Close races the parking and reopening: no panic, no error but ErrClosed.
func TestCloseConcurrentWithParking(t *testing.T) {
	for range 20 {
		d := openTest(t, func(o *Options) { o.NoWAL = true })
		d.put("h", "s", "v", 0)
		var wg sync.WaitGroup
		wg.Go(func() {
			for !d.gate.Closed() {
				if _, err := d.Park(); err != nil {
					t.Errorf("park: %v", err)
					return
				}
			}
		})
		wg.Go(func() {
			for {
				_, _, err := d.Get(key.Encode([]byte("h"), []byte("s")))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("get: %v", err)
					return
				}
			}
		})
		time.Sleep(20 * time.Millisecond)
		if err := d.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		wg.Wait()
		if d.Parked() {
			t.Fatal("a closed store says it is parked")
		}
	}
}

// Syncing a parked store (no WAL) does not reopen it: its parking flushed everything.
func TestSyncAppliedKeepsStoreParked(t *testing.T) {
	d := openTest(t, func(o *Options) { o.NoWAL = true })
	d.put("h", "s", "v", 0)
	if ok, err := d.Park(); !ok || err != nil {
		t.Fatalf("park: %v %v", ok, err)
	}
	if err := d.SyncApplied(); err != nil {
		t.Fatal(err)
	}
	ch, err := d.StartSyncApplied()
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	if !d.Parked() {
		t.Fatal("a sync reopened the parked store")
	}
}

// A parking with MaxOpen keeps at most that many of its stores open (no parking by time
// here): each open of one more, a new store or a parked one that an operation reopens,
// parks the least recently used idle ones first; every store still serves its reads and
// writes, also read in another order and after a close and an open.
func TestParkingBoundsOpenStores(t *testing.T) {
	const n, bound = 24, 5
	base := t.TempDir()
	pk := NewParking(ParkingOptions{MaxOpen: bound})
	defer pk.Close()
	// filesPerStore bounds what one open store holds (an idle one: about eight).
	const filesPerStore = 12
	check := func(when string) {
		t.Helper()
		st := pk.Stats()
		if st.Open > bound || st.OverBound != 0 {
			t.Fatalf("%s: %+v", when, st)
		}
		if files := openFilesUnder(t, base); files > bound*filesPerStore {
			t.Fatalf("%s: %d files open under the stores, %+v", when, files, st)
		}
	}
	dbs := make([]*testDB, n)
	for i := range dbs {
		dbs[i] = openTest(t, func(o *Options) {
			o.Dir = filepath.Join(base, fmt.Sprint(i))
			o.NoWAL = true
			o.Parking = pk
		})
		for j := range 10 {
			dbs[i].put("h", fmt.Sprintf("s%d", j), fmt.Sprintf("%d.%d", i, j), 0)
		}
		check(fmt.Sprintf("store %d written", i))
	}
	if st := pk.Stats(); st.Stores != n || st.Parked != n-bound || st.Evictions < n-bound {
		t.Fatalf("after the writes: %+v", st)
	}
	// The most recently used stay open: the last ones written.
	for i, d := range dbs {
		if parked := d.Parked(); parked != (i < n-bound) {
			t.Fatalf("store %d parked %v", i, parked)
		}
	}
	// Read back in another order, each store twice in a row, then written again.
	for k := range n {
		i := (k * 7) % n
		for j := range 10 {
			if v, code := dbs[i].get("h", fmt.Sprintf("s%d", j)); code != wire.StatusOK || v != fmt.Sprintf("%d.%d", i, j) {
				t.Fatalf("store %d: get s%d: %q %d", i, j, v, code)
			}
		}
		dbs[i].put("h", "again", fmt.Sprint(i), 0)
		check(fmt.Sprintf("store %d read", i))
	}
	// Stores in use are not parked: a scanner context holds its store open, and the others
	// make room around it.
	r, err := dbs[0].GetScanner(&GetScannerRequest{StartKey: userKeyMin, StopKey: []byte{0xff, 0xff}, BatchSize: 2})
	if err != nil || r.ContextID <= 0 {
		t.Fatalf("get_scanner: %+v %v", r, err)
	}
	for i := 1; i < n; i++ {
		if v, code := dbs[i].get("h", "again"); code != wire.StatusOK || v != fmt.Sprint(i) {
			t.Fatalf("store %d: %q %d", i, v, code)
		}
		if dbs[0].Parked() {
			t.Fatalf("the store with a scanner context was parked at store %d", i)
		}
		check(fmt.Sprintf("store %d read with a scanner open", i))
	}
	r, err = dbs[0].Scan(r.ContextID)
	if err != nil || len(r.KVs) != 2 {
		t.Fatalf("scan: %+v %v", r, err)
	}
	dbs[0].ClearScanner(r.ContextID)
	for i, d := range dbs {
		dir := d.opts.Dir
		if err := d.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
		d2 := openTest(t, func(o *Options) { o.Dir = dir; o.NoWAL = true })
		if v, code := d2.get("h", "again"); code != wire.StatusOK || v != fmt.Sprint(i) {
			t.Fatalf("store %d after close and open: %q %d", i, v, code)
		}
		if err := d2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if st := pk.Stats(); st.Stores != 0 || st.Open != 0 || st.Parked != 0 {
		t.Fatalf("after the closes: %+v", st)
	}
	t.Logf("%+v", pk.Stats())
}

// Many goroutines on many stores of a bounded parking: the bound holds whenever no operation
// is in progress, and every read finds its store's writes (-race: no unsynchronized access
// between the opens, the evictions and the operations).
func TestParkingBoundConcurrent(t *testing.T) {
	const n, bound, workers = 16, 4, 6
	base := t.TempDir()
	pk := NewParking(ParkingOptions{MaxOpen: bound})
	defer pk.Close()
	dbs := make([]*testDB, n)
	var mus [n]sync.Mutex // each store's writer index
	for i := range dbs {
		dbs[i] = openTest(t, func(o *Options) {
			o.Dir = filepath.Join(base, fmt.Sprint(i))
			o.NoWAL = true
			o.Parking = pk
		})
	}
	var wg sync.WaitGroup
	fail := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for k := range 150 {
				i := (w*31 + k*7) % n
				d := dbs[i]
				mus[i].Lock()
				d.index++
				idx := d.index
				_, err := d.Apply(&Batch{Index: idx, Time: d.clock.Now(), Mutations: []Mutation{{Put: &PutRequest{
					Key: key.Encode([]byte("h"), fmt.Appendf(nil, "%06d", idx)), Value: []byte("v")}}}})
				mus[i].Unlock()
				if err == nil {
					var c int64
					c, _, err = d.SortKeyCount([]byte("h"))
					if err == nil && c < int64(idx) {
						err = fmt.Errorf("store %d: %d records, index %d written", i, c, idx)
					}
				}
				if err != nil {
					fail <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	st := pk.Stats()
	if st.Open > bound+2*workers || st.Evictions == 0 {
		t.Fatalf("after the workers: %+v", st)
	}
	// One more open: it parks down to the bound, whatever the workers left.
	if _, err := dbs[0].Park(); err != nil {
		t.Fatal(err)
	}
	if _, code := dbs[0].get("h", "000001"); code != wire.StatusOK {
		t.Fatalf("get: %d", code)
	}
	if st := pk.Stats(); st.Open > bound {
		t.Fatalf("after one more read: %+v", st)
	}
	for i, d := range dbs {
		c, _, err := d.SortKeyCount([]byte("h"))
		if err != nil || uint64(c) != d.index {
			t.Fatalf("store %d: %d records, %d written (%v)", i, c, d.index, err)
		}
	}
	t.Logf("%+v", st)
}
