package bulkload

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/rocksdb"
	"github.com/gopegasus/pegasus/internal/storage"
)

// ErrCorrupt is wrapped by the errors of files that cannot be loaded as they are: bad
// metadata, a size or md5 that differs, an unreadable table, a key of another partition, a
// malformed value.
var ErrCorrupt = backup.ErrCorrupt

// DownloadOptions configure [Download].
type DownloadOptions struct {
	// PartitionIndex and PartitionCount say which partition the files must belong to.
	PartitionIndex, PartitionCount int32
	// DataVersion is the value schema of RocksDB-made files' values that do not say it
	// (0 or 1; default 1).
	DataVersion uint32
	// TimestampUS and ClusterID make the timetag of converted v0 values.
	TimestampUS uint64
	ClusterID   uint8
	Limiter     *backup.Limiter
	// Progress is told the bytes downloaded of the total.
	Progress backup.Progress
	// Bytes counts every byte downloaded (a metric).
	Bytes func(n int64)
}

// Stats say what [Download] read.
type Stats struct {
	Files      int
	Bytes      int64 // downloaded
	Records    int64
	Converted  int   // RocksDB files converted
	ConvertIn  int64 // bytes of the RocksDB files converted
	ConvertDur time.Duration
}

// ReadMetadata reads and checks a partition's bulk_load_metadata.
func ReadMetadata(ctx context.Context, svc blockservice.Service, dir string) (Metadata, error) {
	var md Metadata
	p := path.Join(dir, MetadataFile)
	b, err := backup.ReadFile(ctx, svc, p)
	if err != nil {
		return md, err
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return md, &backup.FileError{Path: p, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	var total int64
	seen := map[string]bool{}
	for _, f := range md.Files {
		if f.Name == "" || strings.ContainsAny(f.Name, "/\\") || strings.HasPrefix(f.Name, ".") || seen[f.Name] || f.Size <= 0 {
			return md, &backup.FileError{Path: p, Err: fmt.Errorf("%w: bad file entry %+v", ErrCorrupt, f)}
		}
		seen[f.Name] = true
		total += f.Size
	}
	if len(md.Files) > 0 && (md.FileTotalSize <= 0 || md.FileTotalSize != total) {
		return md, &backup.FileError{Path: p, Err: fmt.Errorf("%w: file_total_size %d, files add up to %d", ErrCorrupt, md.FileTotalSize, total)}
	}
	return md, nil
}

// Download fetches the files of the partition directory dir of svc into the local
// directory local and returns the paths of Pebble SSTs ready for [storage.DB.Ingest]: the
// Pebble SSTs as they were, checked, and the RocksDB SSTs converted (see the package doc).
// Any failure is an error naming the file.
func Download(ctx context.Context, svc blockservice.Service, dir, local string, opts *DownloadOptions) ([]string, Stats, error) {
	var st Stats
	md, err := ReadMetadata(ctx, svc, dir)
	if err != nil {
		return nil, st, err
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		return nil, st, fmt.Errorf("bulkload: %w", err)
	}
	var paths []string
	for _, f := range md.Files {
		remote := path.Join(dir, f.Name)
		raw := filepath.Join(local, "download-"+f.Name)
		err := backup.FetchFile(ctx, svc, remote, raw, f, func(n int64) {
			st.Bytes += n
			if opts.Bytes != nil {
				opts.Bytes(n)
			}
			if opts.Progress != nil {
				opts.Progress(st.Bytes, md.FileTotalSize)
			}
		}, opts.Limiter)
		if err != nil {
			return nil, st, &backup.FileError{Path: remote, Err: err}
		}
		out := filepath.Join(local, fmt.Sprintf("%06d.sst", st.Files))
		n, converted, err := prepareFile(raw, out, opts, &st)
		_ = os.Remove(raw)
		if err != nil {
			return nil, st, &backup.FileError{Path: remote, Err: err}
		}
		st.Files++
		st.Records += n
		if converted {
			st.Converted++
		}
		paths = append(paths, out)
	}
	return paths, st, nil
}

// isRocksDB reports whether the file ends with a RocksDB block-based table magic number
// (Pebble's own table formats end with another).
func isRocksDB(f *os.File, size int64) (bool, error) {
	if size < 8 {
		return false, fmt.Errorf("%w: %d bytes is no table", ErrCorrupt, size)
	}
	var b [8]byte
	if _, err := f.ReadAt(b[:], size-8); err != nil {
		return false, err
	}
	m := binary.LittleEndian.Uint64(b[:])
	return m == 0x88e241b785f4cff7 || m == 0xdb4775248b80fb57, nil
}

// prepareFile checks (Pebble) or converts (RocksDB) the downloaded file raw into out.
func prepareFile(raw, out string, opts *DownloadOptions, st *Stats) (int64, bool, error) {
	f, err := os.Open(raw)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	rocks, err := isRocksDB(f, fi.Size())
	if err != nil {
		return 0, false, err
	}
	if rocks {
		start := time.Now()
		n, err := convert(f, fi.Size(), raw, out, opts)
		st.ConvertDur += time.Since(start)
		st.ConvertIn += fi.Size()
		return n, true, err
	}
	n, err := checkPebble(raw, opts)
	if err != nil {
		return 0, false, err
	}
	if err := os.Rename(raw, out); err != nil {
		return 0, false, err
	}
	return n, false, nil
}

// checkKey checks that an encoded key belongs to the partition.
func checkKey(k []byte, opts *DownloadOptions) error {
	h, err := key.HashEncoded(k)
	if err != nil {
		return fmt.Errorf("%w: key %x: %v", ErrCorrupt, k, err)
	}
	if opts.PartitionCount > 0 {
		if p := key.Partition(h, int(opts.PartitionCount)); p != int(opts.PartitionIndex) {
			hk, _, _ := key.Decode(k)
			return fmt.Errorf("%w: hash key %q belongs to partition %d, not %d", ErrCorrupt, hk, p, opts.PartitionIndex)
		}
	}
	return nil
}

// checkPebble reads a Pebble SST through: readable, keys of the partition, values with a
// data version 1 header.
func checkPebble(p string, opts *DownloadOptions) (int64, error) {
	vf, err := vfs.Default.Open(p)
	if err != nil {
		return 0, err
	}
	readable, err := sstable.NewSimpleReadable(vf)
	if err != nil {
		_ = vf.Close()
		return 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	r, err := sstable.NewReader(context.Background(), readable, sstable.ReaderOptions{})
	if err != nil {
		_ = readable.Close()
		return 0, fmt.Errorf("%w: not a table Pebble reads: %v", ErrCorrupt, err)
	}
	defer r.Close()
	it, err := r.NewIter(sstable.NoTransforms, nil, nil, sstable.AssertNoBlobHandles)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var n int64
	for kv := it.First(); kv != nil; kv = it.Next() {
		if err := checkKey(kv.K.UserKey, opts); err != nil {
			_ = it.Close()
			return n, err
		}
		v, _, err := kv.Value(nil)
		if err != nil {
			_ = it.Close()
			return n, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if len(v) < 12 {
			_ = it.Close()
			return n, fmt.Errorf("%w: value of key %x: %d bytes, shorter than the data version 1 header", ErrCorrupt, kv.K.UserKey, len(v))
		}
		n++
	}
	if err := it.Close(); err != nil {
		return n, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return n, nil
}

// convert turns the RocksDB SST f into the Pebble SST out, record by record.
func convert(f io.ReaderAt, size int64, name, out string, opts *DownloadOptions) (int64, error) {
	t, err := rocksdb.Open(f, size, filepath.Base(name), nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if cf := t.Properties().ColumnFamilyName; cf != "" && cf != "default" {
		return 0, fmt.Errorf("%w: table of column family %q, not the data's", ErrCorrupt, cf)
	}
	w, err := storage.NewSSTWriter(out, opts.TimestampUS, opts.ClusterID)
	if err != nil {
		return 0, err
	}
	n, err := CopyRecords(rocksdb.NewMergedIterator(t), w, opts.DataVersion, storage.Timetag(opts.TimestampUS, opts.ClusterID),
		func(k []byte) error { return checkKey(k, opts) })
	if err != nil {
		w.Abort()
		return n, err
	}
	return n, w.Close()
}

// CopyRecords writes the live records of it to w, each value turned from data version
// (or its own, for v2 values) into data version 1 (v0 values get timetag), each key first
// given to check when check is set. It returns the records written.
func CopyRecords(it *rocksdb.MergedIterator, w *storage.SSTWriter, dataVersion uint32, timetag uint64, check func([]byte) error) (int64, error) {
	var n int64
	var buf []byte
	for it.Next() {
		k := it.Key()
		if check != nil {
			if err := check(k); err != nil {
				return n, err
			}
		}
		v := it.Value()
		from := dataVersion
		if len(v) > 0 && v[0]&0x80 != 0 && dataVersion >= 1 && len(v) >= 13 && v[0]&0x7f >= 2 {
			from = uint32(v[0] & 0x7f)
		}
		var err error
		if buf, err = storage.StoredValue(buf[:0], from, v, timetag); err != nil {
			return n, fmt.Errorf("%w: key %x: %v", ErrCorrupt, k, err)
		}
		if err := w.AddStored(k, buf); err != nil {
			return n, err
		}
		n++
	}
	if err := it.Err(); err != nil {
		if errors.Is(err, rocksdb.ErrCorrupt) || errors.Is(err, rocksdb.ErrUnsupported) {
			return n, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return n, err
	}
	return n, nil
}
