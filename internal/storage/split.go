package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/key"
)

// Partition split. A store may record the partition count it owns keys by (the owned count,
// persisted with the applied index): once recorded, [DB.Apply] refuses every mutation whose
// key maps to another partition (its result says Misrouted, nothing of it is applied), and
// scans that validate the partition hash check by it whatever the table env says. A parent
// partition records the doubled count when it cuts its split over (Batch.PartitionCount);
// the copy of its store that becomes a child records it when it is made ([DB.Own]). Both
// then still hold the other half's records: a background pass deletes them (under the apply
// lock, chunk by chunk, so it never races a write of the same key, of which there is none
// anyway since foreign keys are refused), records that it is done, and compacts the store so
// the space is given back. A store that reopens with the pass unfinished runs it again.

// purgeChunk is how many records the purge examines per step.
const purgeChunk = 1000

// appliedRecordLen is the length of the metaAppliedKey value: u64 applied index | u32 apply
// clock | u32 owned partition count | u32 purged partition count. Stores written before the
// split existed have the first two only (12 bytes).
const appliedRecordLen = 20

// appendAppliedRecord appends the metaAppliedKey value for the given index and clock and the
// store's split state. Call it with applyMu held.
func (db *DB) appendAppliedRecord(dst []byte, index uint64, clock uint32) []byte {
	dst = binary.BigEndian.AppendUint64(dst, index)
	dst = binary.BigEndian.AppendUint32(dst, clock)
	dst = binary.BigEndian.AppendUint32(dst, uint32(db.owned.Load()))
	return binary.BigEndian.AppendUint32(dst, uint32(db.purged))
}

// PartitionCount returns the partition count the store owns its keys by, recorded by a
// split (0 when none was recorded: the store checks no key at apply). Safe for concurrent
// use.
func (db *DB) PartitionCount() int32 { return db.owned.Load() }

// SetPartitionCount tells the store the table's partition count as its replica knows it, for
// the scans that validate the partition hash; the count the store owns by, when larger,
// wins. Safe for concurrent use.
func (db *DB) SetPartitionCount(n int32) { db.assigned.Store(n) }

// scanCount is the partition count a validating scan checks by: the owned count, or the one
// the replica gave.
func (db *DB) scanCount() int32 { return max(db.owned.Load(), db.assigned.Load()) }

// Own records count as the partition count the store owns by (a store made from a copy of
// its split parent's), durably, and starts deleting the records of the other partitions.
// The count must be a multiple of the one already recorded, if any, and place the store's
// own partition index.
func (db *DB) Own(count int32) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.exit()
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if old := db.owned.Load(); count <= 0 || db.opts.PartitionIndex >= count || (old > 0 && count%old != 0) {
		return fmt.Errorf("storage: own partition %d of %d (recorded: %d)", db.opts.PartitionIndex, count, old)
	}
	db.owned.Store(count)
	b := db.pdb.NewBatch()
	defer b.Close()
	if err := b.Set(metaAppliedKey, db.appendAppliedRecord(nil, db.applied.Load(), db.applyClock), nil); err != nil {
		return err
	}
	if err := db.commitDurably(b); err != nil {
		return fmt.Errorf("storage: record the partition count: %w", err)
	}
	db.startPurgeLocked()
	return nil
}

// routingHash returns the partition hash of the key a mutation is routed by, and false for a
// mutation without a well-formed key (it is refused at apply anyway).
func routingHash(m *Mutation) (uint64, bool) {
	var k []byte
	switch {
	case m.Put != nil:
		k = m.Put.Key
	case m.Remove != nil:
		k = m.Remove.Key
	case m.Incr != nil:
		k = m.Incr.Key
	case m.MultiPut != nil:
		return key.Hash(m.MultiPut.HashKey), true
	case m.MultiRemove != nil:
		return key.Hash(m.MultiRemove.HashKey), true
	case m.CheckAndSet != nil:
		return key.Hash(m.CheckAndSet.HashKey), true
	case m.CheckAndMutate != nil:
		return key.Hash(m.CheckAndMutate.HashKey), true
	default:
		return 0, false
	}
	h, err := key.HashEncoded(k)
	return h, err == nil
}

// misrouted reports whether m writes a key that another partition owns, by the recorded
// count. Call it with applyMu held.
func (db *DB) misrouted(m *Mutation) bool {
	n := db.owned.Load()
	if n <= 0 {
		return false
	}
	h, ok := routingHash(m)
	return ok && key.Partition(h, int(n)) != int(db.opts.PartitionIndex)
}

// startPurgeLocked starts the purge of the other partitions' records if the recorded count
// asks for one and none runs. Call it with applyMu held, as a user of the Pebble database
// (inside enter, or in Open).
func (db *DB) startPurgeLocked() {
	if n := db.owned.Load(); n <= 0 || db.purged == n || db.purging {
		return
	}
	db.purging = true
	db.wg.Add(1)
	db.pin() // cannot fail: the caller uses the database; the purge keeps it open
	go func() {
		defer db.wg.Done()
		defer db.unpin()
		err := db.purgeForeign()
		db.applyMu.Lock()
		db.purging = false
		db.applyMu.Unlock()
		switch {
		case errors.Is(err, ErrClosed):
		case err != nil:
			db.lg.Warn("deleting the records of other partitions failed", "err", err)
		default:
			db.lg.Info("records of other partitions deleted", "partition", db.opts.PartitionIndex, "count", db.owned.Load())
		}
	}()
}

// purgeForeign deletes every record another partition owns by the recorded count, records
// that it is done, then compacts the store.
func (db *DB) purgeForeign() error {
	n := db.owned.Load()
	cursor := bytes.Clone(userKeyMin)
	for cursor != nil {
		select {
		case <-db.stop:
			return ErrClosed
		default:
		}
		var err error
		if cursor, err = db.purgeChunk(cursor, n); err != nil {
			return err
		}
	}
	db.applyMu.Lock()
	if db.gate.Closed() {
		db.applyMu.Unlock()
		return ErrClosed
	}
	db.purged = n
	b := db.pdb.NewBatch()
	err := b.Set(metaAppliedKey, db.appendAppliedRecord(nil, db.applied.Load(), db.applyClock), nil)
	if err == nil {
		err = b.Commit(db.writeOp)
	}
	if err == nil {
		db.committed()
	}
	_ = b.Close()
	db.applyMu.Unlock()
	if err != nil {
		return fmt.Errorf("storage: record the purge: %w", err)
	}
	if err := db.compactAll(); err != nil && !errors.Is(err, pebble.ErrClosed) {
		return fmt.Errorf("storage: compact after the purge: %w", err)
	}
	return nil
}

// purgeChunk deletes the foreign records among up to purgeChunk records from cursor and
// returns where to go on (nil at the end).
func (db *DB) purgeChunk(cursor []byte, n int32) ([]byte, error) {
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if db.gate.Closed() {
		return nil, ErrClosed
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: cursor})
	if err != nil {
		return nil, fmt.Errorf("storage: purge: %w", err)
	}
	defer it.Close()
	b := db.pdb.NewBatch()
	defer b.Close()
	var next []byte
	seen := 0
	for it.First(); it.Valid(); it.Next() {
		if seen == purgeChunk {
			next = bytes.Clone(it.Key())
			break
		}
		seen++
		if h, err := key.HashEncoded(it.Key()); err == nil && key.Partition(h, int(n)) != int(db.opts.PartitionIndex) {
			if err := b.Delete(it.Key(), nil); err != nil {
				return nil, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("storage: purge: %w", err)
	}
	if b.Count() > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			return nil, fmt.Errorf("storage: purge: %w", err)
		}
		db.committed()
	}
	return next, nil
}

// Purged reports whether the records of the other partitions are all deleted (true when no
// split was recorded). Safe for concurrent use.
func (db *DB) Purged() bool {
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	return db.purged == db.owned.Load() || db.owned.Load() == 0
}
