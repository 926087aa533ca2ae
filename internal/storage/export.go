package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Record is one stored record in its stored form: the encoded key, the user value, the
// absolute expire timestamp (seconds since [EpochUnix], 0 = never) and the timetag (0 in
// data version 0).
type Record struct {
	Key      []byte
	Value    []byte
	ExpireTS uint32
	Timetag  uint64
}

// Export calls fn with every live record (by the read clock), in key order, until fn returns
// an error, which Export returns. The record's slices are valid only during the call. Meant
// for a checkpoint no one writes to (a duplication's seed): on a live store, it sees the
// writes made during the walk or not.
func (db *DB) Export(fn func(Record) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.exit()
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: userKeyMin})
	if err != nil {
		return fmt.Errorf("storage: export: %w", err)
	}
	defer it.Close()
	now := db.epochNow()
	for it.First(); it.Valid(); it.Next() {
		raw, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("storage: export: %w", err)
		}
		e, user, ok := splitValue(db.version, raw)
		if !ok {
			return fmt.Errorf("%w: value of %d bytes at key %x", ErrCorruption, len(raw), it.Key())
		}
		if expired(e, now) {
			continue
		}
		r := Record{Key: it.Key(), Value: user, ExpireTS: e}
		if db.version != dataVersion0 {
			r.Timetag = binary.BigEndian.Uint64(raw[4:])
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("storage: export: %w", err)
	}
	return nil
}

// TimetagTimestamp returns the microsecond timestamp a timetag holds.
func TimetagTimestamp(timetag uint64) int64 { return int64(timetag >> 8) }
