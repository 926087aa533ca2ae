package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Bulk load and restore: files made elsewhere become part of a store.

// IngestTableFormat is the table format of the SSTs [NewSSTWriter] writes: one every
// store opens (Pebble's oldest supported format major version ingests it).
const IngestTableFormat = sstable.TableFormatPebblev3

// Ingest adds the SST files at paths (Pebble SSTs of encoded keys and stored values of the
// store's data version, as [SSTWriter] writes them) to the store as the batch of log index
// index, and records index as applied. The files are moved into the store (or copied) and
// must not be used afterwards. Their records win over older ones of the same keys. A file
// with a metadata key (shorter than 2 bytes) is refused. Ingest is serialized with Apply.
func (db *DB) Ingest(ctx context.Context, index uint64, paths []string) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.exit()
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if index <= db.applied.Load() {
		return fmt.Errorf("%w: %d <= %d", ErrStaleIndex, index, db.applied.Load())
	}
	for _, p := range paths {
		if err := checkIngestFile(p); err != nil {
			return err
		}
	}
	if len(paths) > 0 {
		if err := db.pdb.Ingest(ctx, paths); err != nil {
			return fmt.Errorf("storage: ingest %d files: %w", len(paths), err)
		}
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	var idx [12]byte
	binary.BigEndian.PutUint64(idx[:], index)
	binary.BigEndian.PutUint32(idx[8:], db.applyClock)
	_ = b.Set(metaAppliedKey, idx[:], nil)
	if err := db.commitDurably(b); err != nil {
		return fmt.Errorf("storage: record ingestion at %d: %w", index, err)
	}
	db.applied.Store(index)
	return nil
}

// checkIngestFile refuses an SST whose keys reach into the store's metadata keys.
func checkIngestFile(p string) error {
	f, err := vfs.Default.Open(p)
	if err != nil {
		return fmt.Errorf("storage: ingest: %w", err)
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("storage: ingest %s: %w", p, err)
	}
	r, err := sstable.NewReader(context.Background(), readable, sstable.ReaderOptions{})
	if err != nil {
		_ = readable.Close()
		return fmt.Errorf("storage: ingest %s: %w", p, err)
	}
	defer r.Close()
	it, err := r.NewIter(sstable.NoTransforms, nil, nil, sstable.AssertNoBlobHandles)
	if err != nil {
		return fmt.Errorf("storage: ingest %s: %w", p, err)
	}
	defer it.Close()
	if kv := it.First(); kv != nil && len(kv.K.UserKey) < len(userKeyMin) {
		return fmt.Errorf("storage: ingest %s: key %x is not an encoded user key", p, kv.K.UserKey)
	}
	return nil
}

// ResetApplied makes the closed store in dir (a checkpoint of another partition, being
// restored into a new one) start at applied index 0, so a new raft group's entries are
// applied to it from the first.
func ResetApplied(dir string) error {
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: PebbleLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", dir, err)
	}
	err = pdb.Delete(metaAppliedKey, pebble.Sync)
	if err == nil {
		err = pdb.Flush()
	}
	return errors.Join(err, pdb.Close())
}

// SSTWriter writes one Pebble SST of records for [DB.Ingest] (or for a bulk load's
// provider layout): encoded keys in increasing order, stored values of data version 1.
// Not safe for concurrent use.
type SSTWriter struct {
	w       *sstable.Writer
	buf     []byte
	timetag uint64
	path    string
}

// NewSSTWriter creates the file path. The records' timetags carry timestampUS and
// clusterID, as a write applied at that time would.
func NewSSTWriter(path string, timestampUS uint64, clusterID uint8) (*SSTWriter, error) {
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), sstable.WriterOptions{
		TableFormat: IngestTableFormat,
		Compression: sstable.SnappyCompression,
	})
	return &SSTWriter{w: w, timetag: makeTimetag(timestampUS&(1<<56-1), clusterID), path: path}, nil
}

// Add appends a record: k is an encoded key (internal/key), greater than the previous
// one; expireTS is seconds since [EpochUnix] (0: none); user is the value.
func (w *SSTWriter) Add(k []byte, expireTS uint32, user []byte) error {
	n := headerLen(dataVersion1) + len(user)
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	w.buf = w.buf[:n]
	putValue(w.buf, dataVersion1, expireTS, w.timetag, user)
	return w.w.Set(k, w.buf)
}

// AddStored appends a record whose value is already in the stored form of data version 1.
func (w *SSTWriter) AddStored(k, stored []byte) error { return w.w.Set(k, stored) }

// Close finishes the file. After an error the file is removed.
func (w *SSTWriter) Close() error {
	if err := w.w.Close(); err != nil {
		_ = os.Remove(w.path)
		return fmt.Errorf("storage: write %s: %w", w.path, err)
	}
	return nil
}

// Abort abandons the file and removes it.
func (w *SSTWriter) Abort() {
	_ = w.w.Close()
	_ = os.Remove(w.path)
}

// StoredValue converts a value of data version from (0, 1, or 2 and later, whose first
// byte is 0x80|version) to the stored form of data version 1, keeping its expire time and
// timetag (v0 values get timetag). It appends to dst.
func StoredValue(dst []byte, from uint32, raw []byte, timetag uint64) ([]byte, error) {
	switch {
	case len(raw) > 0 && raw[0]&0x80 != 0 && from >= 2:
		// v2+: version byte, expire_ts, timetag, data.
		if len(raw) < 13 {
			return nil, fmt.Errorf("storage: value of data version %d: %d bytes", raw[0]&0x7f, len(raw))
		}
		return append(dst, raw[1:]...), nil
	case from == dataVersion0:
		if len(raw) < 4 {
			return nil, fmt.Errorf("storage: value of data version 0: %d bytes", len(raw))
		}
		dst = append(dst, raw[:4]...)
		dst = binary.BigEndian.AppendUint64(dst, timetag)
		return append(dst, raw[4:]...), nil
	default:
		if len(raw) < 12 {
			return nil, fmt.Errorf("storage: value of data version 1: %d bytes", len(raw))
		}
		return append(dst, raw...), nil
	}
}

// Timetag is the timetag a value written at timestampUS by cluster clusterID carries.
func Timetag(timestampUS uint64, clusterID uint8) uint64 {
	return makeTimetag(timestampUS&(1<<56-1), clusterID)
}
