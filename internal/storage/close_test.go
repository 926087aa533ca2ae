package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Close races reads, scans, checkpoints, sweeps and manual compactions: every operation
// either answers as on an open database or fails with ErrClosed, none panics (Pebble panics
// when used after its Close), and the race detector sees no unsynchronized access (in
// particular between StartCompaction's wg.Add and Close's wg.Wait).
func TestCloseConcurrentWithOperations(t *testing.T) {
	iterations := 20
	if testing.Short() {
		iterations = 5
	}
	for it := range iterations {
		d := openTest(t, nil)
		for i := range 200 {
			d.put(fmt.Sprintf("h%d", i%10), fmt.Sprintf("s%03d", i), "v", 0)
		}
		// A scan with an open context, so Close has a context to drop while batches run.
		first, err := d.GetScanner(&GetScannerRequest{StartKey: userKeyMin, StopKey: []byte{0xff, 0xff}, BatchSize: 10})
		if err != nil || first.ContextID <= 0 {
			t.Fatalf("get_scanner: %+v %v", first, err)
		}
		var wg, busy sync.WaitGroup
		busy.Add(8)
		fail := make(chan error, 64)
		check := func(what string, err error) bool {
			if err != nil && !errors.Is(err, ErrClosed) {
				fail <- fmt.Errorf("%s: %w", what, err)
			}
			return err == nil
		}
		for w := range 8 {
			wg.Go(func() {
				ctxID := first.ContextID
				for n := 0; ; n++ {
					hk := []byte(fmt.Sprintf("h%d", n%10))
					var ok bool
					switch w { // one worker per kind of operation
					case 0:
						v, code, err := d.Get(key.Encode(hk, []byte(fmt.Sprintf("s%03d", n%10))))
						if ok = check("get", err); ok && code == wire.StatusOK && string(v) != "v" {
							fail <- fmt.Errorf("get: %q", v)
						}
					case 1:
						r, err := d.MultiGet(&MultiGetRequest{HashKey: hk})
						if ok = check("multi_get", err); ok && (r.Error != wire.StatusOK || len(r.KVs) != 20) {
							fail <- fmt.Errorf("multi_get: code %d, %d records", r.Error, len(r.KVs))
						}
					case 2:
						c, code, err := d.SortKeyCount(hk)
						if ok = check("sortkey_count", err); ok && (code != wire.StatusOK || c != 20) {
							fail <- fmt.Errorf("sortkey_count: code %d count %d", code, c)
						}
					case 3:
						if ctxID > 0 {
							r, err := d.Scan(ctxID)
							if ok = check("scan", err); ok {
								ctxID = r.ContextID
							}
						} else {
							r, err := d.GetScanner(&GetScannerRequest{StartKey: key.Encode(hk, nil), StopKey: key.HashKeyEnd(hk), BatchSize: 5})
							if ok = check("get_scanner", err); ok {
								d.ClearScanner(r.ContextID)
							}
						}
					case 4:
						_, err := d.Checkpoint(filepath.Join(t.TempDir(), "cp"))
						ok = check("checkpoint", err)
					case 5:
						ok = d.StartCompaction() || d.CompactionStatus().State == CompactionRunning
						_ = d.Metrics()
					case 6:
						_, err := d.Sweep()
						ok = check("sweep", err)
					case 7:
						_, _, err := d.TTL(key.Encode(hk, []byte("s000")))
						ok = check("ttl", err)
					}
					if !ok {
						return // closed
					}
					if n == 0 {
						busy.Done() // every kind of operation ran on the open database
					}
				}
			})
		}
		busy.Wait()
		if err := d.Close(); err != nil {
			t.Fatalf("iteration %d: close: %v", it, err)
		}
		wg.Wait()
		close(fail)
		for err := range fail {
			t.Errorf("iteration %d: %v", it, err)
		}
		if err := d.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second close: %v", err)
		}
		if d.StartCompaction() {
			t.Fatal("a compaction started after Close")
		}
	}
}
