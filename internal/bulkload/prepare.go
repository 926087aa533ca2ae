package bulkload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/storage"
)

// Input formats of [Prepare].
const (
	// FormatCSV: one record a line, hash_key,sort_key,value[,ttl_seconds] (RFC 4180
	// quoting); a first line "hash_key,sort_key,value[,ttl]" is taken as a header.
	FormatCSV = "csv"
	// FormatJSONLines: one JSON object a line, {"hash_key","sort_key","value"} strings and
	// an optional "ttl" in seconds.
	FormatJSONLines = "jsonl"
)

// PrepareOptions configure [Prepare].
type PrepareOptions struct {
	// Format is FormatCSV or FormatJSONLines.
	Format string
	// Now is the time TTLs count from and the records' timetags carry (default time.Now).
	Now time.Time
	// ClusterID goes into the timetags (0..127).
	ClusterID uint8
	// TempDir holds the SSTs while they are written (default os.TempDir()).
	TempDir string
}

// PrepareStats say what [Prepare] wrote.
type PrepareStats struct {
	Records  int64
	Bytes    int64 // of the SST files
	Replaced int64 // records whose key came again later in the input (the last one wins)
}

// record is one input record, its key encoded.
type record struct {
	key      []byte
	value    []byte
	expireTS uint32
	seq      int // input order, so the last of equal keys wins
}

// Prepare reads records from r and writes the bulk load layout of table app (id appID,
// partitionCount partitions) under root/cluster on svc: one Pebble SST per partition that
// has records, each partition's bulk_load_metadata, then bulk_load_info (last, so a
// half-prepared tree fails a start). The records are held in memory, sorted per partition.
// A malformed line is an error naming its line number.
func Prepare(ctx context.Context, r io.Reader, svc blockservice.Service, root, cluster, app string, appID, partitionCount int32, opts *PrepareOptions) (PrepareStats, error) {
	var st PrepareStats
	o := PrepareOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if partitionCount <= 0 {
		return st, fmt.Errorf("bulkload: partition count %d", partitionCount)
	}
	parts := make([][]record, partitionCount)
	now := storage.EpochNow(o.Now)
	add := func(line int, hash, sort, value []byte, ttl int64) error {
		if len(hash) > 0xffff {
			return fmt.Errorf("bulkload: line %d: hash key of %d bytes", line, len(hash))
		}
		if ttl < 0 {
			return fmt.Errorf("bulkload: line %d: negative ttl %d", line, ttl)
		}
		var exp uint32
		if ttl > 0 {
			exp = now + uint32(min(ttl, 1<<31))
		}
		pidx := key.Partition(key.Hash(hash), int(partitionCount))
		parts[pidx] = append(parts[pidx], record{key: key.Encode(hash, sort), value: bytes.Clone(value), expireTS: exp, seq: int(st.Records)})
		st.Records++
		return nil
	}
	var err error
	switch o.Format {
	case FormatCSV:
		err = readCSV(r, add)
	case FormatJSONLines:
		err = readJSONLines(r, add)
	default:
		err = fmt.Errorf("bulkload: unknown input format %q (want %s or %s)", o.Format, FormatCSV, FormatJSONLines)
	}
	if err != nil {
		return st, err
	}
	tmp, err := os.MkdirTemp(o.TempDir, "bulkload-")
	if err != nil {
		return st, fmt.Errorf("bulkload: %w", err)
	}
	defer os.RemoveAll(tmp)
	tsUS := uint64(o.Now.UnixMicro())
	for pidx, recs := range parts {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		slices.SortStableFunc(recs, func(a, b record) int { return bytes.Compare(a.key, b.key) })
		md := Metadata{Files: []FileMeta{}}
		if len(recs) > 0 {
			name := fmt.Sprintf("%05d.sst", 1)
			local := filepath.Join(tmp, fmt.Sprintf("%d-%s", pidx, name))
			w, err := storage.NewSSTWriter(local, tsUS, o.ClusterID)
			if err != nil {
				return st, err
			}
			for i, rec := range recs {
				if i+1 < len(recs) && bytes.Equal(recs[i+1].key, rec.key) {
					st.Replaced++
					continue // a later record of the key follows
				}
				if err := w.Add(rec.key, rec.expireTS, rec.value); err != nil {
					w.Abort()
					return st, fmt.Errorf("bulkload: partition %d: %w", pidx, err)
				}
			}
			if err := w.Close(); err != nil {
				return st, err
			}
			parts[pidx] = nil // free the records
			f, err := os.Open(local)
			if err != nil {
				return st, fmt.Errorf("bulkload: %w", err)
			}
			fi, _ := f.Stat()
			ent, err := svc.Write(ctx, path.Join(PartitionDir(root, cluster, app, int32(pidx)), name), bufio.NewReaderSize(f, 1<<20),
				&blockservice.WriteOptions{Size: fi.Size()})
			_ = f.Close()
			_ = os.Remove(local)
			if err != nil {
				return st, err
			}
			md.Files = append(md.Files, FileMeta{Name: name, Size: ent.Size, MD5: ent.MD5})
			md.FileTotalSize += ent.Size
			st.Bytes += ent.Size
		}
		if err := backup.WriteJSON(ctx, svc, path.Join(PartitionDir(root, cluster, app, int32(pidx)), MetadataFile), md); err != nil {
			return st, err
		}
	}
	info := Info{AppID: appID, AppName: app, PartitionCount: partitionCount}
	if err := backup.WriteJSON(ctx, svc, path.Join(AppDir(root, cluster, app), InfoFile), info); err != nil {
		return st, err
	}
	st.Records -= st.Replaced
	return st, nil
}

func readCSV(r io.Reader, add func(line int, hash, sort, value []byte, ttl int64) error) error {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bulkload: csv: %w", err)
		}
		if line == 1 && len(rec) >= 3 && rec[0] == "hash_key" && rec[1] == "sort_key" {
			continue
		}
		if len(rec) < 3 || len(rec) > 4 {
			return fmt.Errorf("bulkload: csv line %d: %d fields, want hash_key,sort_key,value[,ttl]", line, len(rec))
		}
		var ttl int64
		if len(rec) == 4 && rec[3] != "" {
			if ttl, err = strconv.ParseInt(rec[3], 10, 64); err != nil {
				return fmt.Errorf("bulkload: csv line %d: ttl %q: %w", line, rec[3], err)
			}
		}
		if err := add(line, []byte(rec[0]), []byte(rec[1]), []byte(rec[2]), ttl); err != nil {
			return err
		}
	}
}

func readJSONLines(r io.Reader, add func(line int, hash, sort, value []byte, ttl int64) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec struct {
			HashKey *string `json:"hash_key"`
			SortKey *string `json:"sort_key"`
			Value   *string `json:"value"`
			TTL     int64   `json:"ttl"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("bulkload: json line %d: %w", line, err)
		}
		if rec.HashKey == nil || rec.SortKey == nil || rec.Value == nil {
			return fmt.Errorf("bulkload: json line %d: hash_key, sort_key and value are required", line)
		}
		if err := add(line, []byte(*rec.HashKey), []byte(*rec.SortKey), []byte(*rec.Value), rec.TTL); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("bulkload: %w", err)
	}
	return nil
}
