package storage

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// sweepChunk is the number of records the sweeper examines per step; the apply lock is taken
// once per step that found expired records.
const sweepChunk = 1000

// sweepLoop runs sweeper passes every SweepInterval and discards idle scanner contexts until
// the database closes.
func (db *DB) sweepLoop() {
	defer db.wg.Done()
	tick := min(db.opts.ScannerIdleTimeout/4, db.opts.SweepInterval)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		// A parked store has no scanner context, and its pass waits until it reopens.
		if !db.pin() {
			continue
		}
		db.scanners.expireIdle(db.opts.Now()) // closes their iterators: a pass too
		if time.Since(lastSweep) >= db.opts.SweepInterval {
			if _, err := db.sweep(true); err != nil && !errors.Is(err, ErrClosed) {
				db.lg.Warn("expired record sweep failed", "err", err)
			}
			lastSweep = time.Now()
		}
		db.unpin()
	}
}

// Sweep walks the whole partition once and deletes every record that is expired by the read
// clock, returning how many it deleted. It runs at full speed (the background sweeper is
// rate-limited). Deletes do not change the applied index. A Close that begins meanwhile ends
// the pass at its next chunk (ErrClosed).
func (db *DB) Sweep() (int64, error) {
	if err := db.enter(); err != nil {
		return 0, err
	}
	defer db.exit()
	return db.sweep(false)
}

// sweep runs one pass. The sweeper's passes (paced) run outside the gate, or a Close would
// wait for a whole paced pass: they stop at the next chunk once Close has begun, and Close
// joins the sweeper before it closes Pebble. They hold a pin (park.go), so the store is not
// parked under them.
func (db *DB) sweep(paced bool) (int64, error) {
	var total int64
	cursor := bytes.Clone(userKeyMin)
	pause := time.Duration(float64(time.Second) * sweepChunk / float64(db.opts.SweepRate))
	for {
		if db.gate.Closed() {
			return total, ErrClosed
		}
		next, cands, err := db.sweepScan(cursor)
		if err != nil {
			return total, err
		}
		if len(cands) > 0 {
			n, err := db.sweepDelete(cands)
			total += n
			if err != nil {
				return total, err
			}
		}
		if next == nil {
			break
		}
		cursor = next
		if paced {
			select {
			case <-db.stop:
				return total, ErrClosed
			case <-time.After(pause):
			}
		}
	}
	db.sweepPasses.Add(1)
	return total, nil
}

// sweepScan examines up to sweepChunk records from cursor and returns the keys that are
// expired now, and the key to resume from (nil at the end of the partition).
func (db *DB) sweepScan(cursor []byte) (next []byte, cands [][]byte, err error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: cursor})
	if err != nil {
		return nil, nil, fmt.Errorf("storage: sweep: %w", err)
	}
	defer it.Close()
	now := db.epochNow()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n == sweepChunk {
			return bytes.Clone(it.Key()), cands, nil
		}
		n++
		raw, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, fmt.Errorf("storage: sweep: %w", err)
		}
		if e, _, ok := splitValue(db.version, raw); ok && expired(e, now) {
			cands = append(cands, bytes.Clone(it.Key()))
		}
	}
	return nil, cands, it.Error()
}

// sweepDelete deletes the candidates that are still expired, both by the read clock and by
// the apply clock. It holds the apply lock, so no write can slip in between the re-check and
// the delete: a record a concurrent write re-created with a live value is left alone. And as
// the apply clock never goes back, every later Apply would see a deleted record as expired
// (absent) anyway, so deletes cannot make replicas decide incr or check-and-set differently.
func (db *DB) sweepDelete(cands [][]byte) (int64, error) {
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if db.gate.Closed() {
		return 0, ErrClosed
	}
	now := min(db.epochNow(), db.applyClock)
	b := db.pdb.NewBatch()
	defer b.Close()
	var n int64
	for _, k := range cands {
		raw, closer, err := db.pdb.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("storage: sweep: %w", err)
		}
		e, _, ok := splitValue(db.version, raw)
		_ = closer.Close()
		if !ok || !expired(e, now) {
			continue
		}
		if err := b.Delete(k, nil); err != nil {
			return 0, err
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("storage: sweep: %w", err)
	}
	db.committed()
	db.reclaimed.Add(n)
	return n, nil
}
