package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/bulkload"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rocksdb"
	"github.com/gopegasus/pegasus/internal/storage"
)

// Restores (operations.md §3). A replica of a table made by RPC_CM_START_RESTORE (its envs
// restore.* say which backup) does not open an empty store: a job downloads its
// partition's checkpoint (each file checked by size and md5), makes it the replica's store
// and only then is the partition opened, at applied index 0, as a new raft group's member.
// Every replica restores from the provider itself, so the group starts from the same
// state everywhere. A checkpoint of Apache Pegasus (RocksDB files) is converted: the
// records of its default column family, merged, are written into a new store;
// pegasus_meta_cf's files give the data version. A failure is reported with its error and
// the partition stays closed; with restore.skip_bad_partition the replica starts empty
// instead.

// Table envs a restore reads (the meta's names).
const (
	envRestoreProvider = "restore.block_service_provider"
	envRestoreCluster  = "restore.cluster_name"
	envRestoreAppName  = "restore.app_name"
	envRestoreAppID    = "restore.app_id"
	envRestoreBackupID = "restore.backup_id"
	envRestoreSkipBad  = "restore.skip_bad_partition"
	envRestorePath     = "restore.restore_path"
)

// restoreJob is one replica's restore. Fields below gpid are guarded by mu.
type restoreJob struct {
	gpid idl.GPID

	mu       sync.Mutex
	progress int32
	done     bool // the store is in place (or, skipped, the replica starts empty)
	skipped  bool
	err      string
	code     string
}

func (j *restoreJob) report() cluster.RestoreReport {
	j.mu.Lock()
	defer j.mu.Unlock()
	return cluster.RestoreReport{AppID: j.gpid.AppID, PartitionIndex: j.gpid.PartitionIndex, Progress: j.progress,
		Done: j.done, Skipped: j.skipped, Err: j.err, Code: j.code}
}

// holdForRestore reports whether the assignment a must not be opened yet: its table is
// being restored and this replica's store is not in place. It starts the restore job when
// none runs. Called by the sync goroutine for partitions that are not open.
func (s *Server) holdForRestore(ctx context.Context, a cluster.Assignment) bool {
	if _, ok := a.Envs[envRestoreBackupID]; !ok {
		return false
	}
	pid := idl.GPID{AppID: a.AppID, PartitionIndex: a.PartitionIndex}
	o := &s.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	j := o.restores[pid]
	if j == nil {
		j = &restoreJob{gpid: pid}
		o.restores[pid] = j
		if _, err := os.Stat(s.dataDir(pid)); err == nil {
			// Restored before (the server restarted since): report it done again.
			j.done, j.progress = true, 1000
			return false
		}
		o.wg.Go(func() { s.restorePartition(ctx, a, j) })
		return true
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.done
}

// restorePartition runs one restore job.
func (s *Server) restorePartition(ctx context.Context, a cluster.Assignment, j *restoreJob) {
	pid := j.gpid
	lg := s.lg.With("gpid", pid.String())
	err := s.restoreStore(ctx, a, j)
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case err == nil:
		j.done, j.progress = true, 1000
		lg.Info("replica restored from backup")
	case ctx.Err() != nil:
		// Stopped: a restarted server starts over (nothing is in place).
	case a.Envs[envRestoreSkipBad] == "true":
		j.done, j.skipped, j.progress = true, true, 1000
		lg.Warn("restore of the replica failed; it starts empty (skip_bad_partition)", "err", err)
	default:
		j.err, j.code = err.Error(), codeOfOpErr(err)
		s.ops.failures.Add(1)
		lg.Error("restore of the replica failed", "err", err)
	}
}

// restoreStore downloads and puts in place the replica's store.
func (s *Server) restoreStore(ctx context.Context, a cluster.Assignment, j *restoreJob) error {
	svc, err := s.provider(a.Envs[envRestoreProvider])
	if err != nil {
		return err
	}
	backupID, err1 := strconv.ParseInt(a.Envs[envRestoreBackupID], 10, 64)
	oldID, err2 := strconv.Atoi(a.Envs[envRestoreAppID])
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("replica: restore envs: %w", err)
	}
	root := backup.Root(a.Envs[envRestorePath], a.Envs[envRestoreCluster])
	remote := backup.PartitionDir(root, backupID, a.Envs[envRestoreAppName], int32(oldID), a.PartitionIndex)
	pdir := s.partitionDir(j.gpid)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(pdir, "restore.tmp")
	_ = os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if _, err := backup.Download(ctx, svc, remote, tmp, &backup.DownloadOptions{Limiter: s.ops.limiter,
		Bytes: func(n int64) { s.ops.downloaded.Add(n) },
		Progress: func(done, total int64) {
			j.mu.Lock()
			if total > 0 {
				j.progress = int32(min(999, done*1000/total))
			}
			j.mu.Unlock()
		}}); err != nil {
		return err
	}
	data := s.dataDir(j.gpid)
	if _, err := os.Stat(filepath.Join(tmp, "CURRENT")); err == nil {
		// RocksDB wrote it: an upstream Pegasus checkpoint.
		return restoreUpstream(ctx, tmp, data, pdir)
	}
	if err := storage.ResetApplied(tmp); err != nil {
		return fmt.Errorf("%w: checkpoint does not open: %v", backup.ErrCorrupt, err)
	}
	return os.Rename(tmp, data)
}

// restoreUpstream makes the store data from the RocksDB checkpoint in dir: the live
// records of its default column family's tables, with values turned from the data version
// that pegasus_meta_cf records into ours, ingested into a new store.
func restoreUpstream(ctx context.Context, dir, data, pdir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var tables []*rocksdb.Table
	var files []*os.File
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	var metaTables []*rocksdb.Table
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".sst") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		files = append(files, f)
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		t, err := rocksdb.Open(f, fi.Size(), e.Name(), nil)
		if err != nil {
			return fmt.Errorf("%w: %v", backup.ErrCorrupt, err)
		}
		switch cf := t.Properties().ColumnFamilyName; cf {
		case "pegasus_meta_cf":
			metaTables = append(metaTables, t)
		case "", "default":
			tables = append(tables, t)
		default:
			return fmt.Errorf("%w: %s: table of unknown column family %q", backup.ErrCorrupt, e.Name(), cf)
		}
	}
	version := uint32(1)
	if len(metaTables) > 0 {
		it := rocksdb.NewMergedIterator(metaTables...)
		for it.Next() {
			if string(it.Key()) == "pegasus_data_version" {
				if v, err := strconv.ParseUint(strings.TrimSpace(string(it.Value())), 10, 32); err == nil {
					version = uint32(v)
				}
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("%w: pegasus_meta_cf: %v", backup.ErrCorrupt, err)
		}
	}
	sst := filepath.Join(pdir, "restore.sst")
	defer os.Remove(sst)
	ts := uint64(time.Now().UnixMicro())
	w, err := storage.NewSSTWriter(sst, ts, 0)
	if err != nil {
		return err
	}
	n, err := bulkload.CopyRecords(rocksdb.NewMergedIterator(tables...), w, version, storage.Timetag(ts, 0), nil)
	if err != nil {
		w.Abort()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	tmpData := filepath.Join(pdir, "restore.data")
	_ = os.RemoveAll(tmpData)
	db, err := storage.Open(storage.Options{Dir: tmpData, SweepInterval: -1})
	if err != nil {
		return err
	}
	var paths []string
	if n > 0 {
		paths = []string{sst}
	}
	err = db.Ingest(ctx, 1, paths)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = storage.ResetApplied(tmpData)
	}
	if err != nil {
		_ = os.RemoveAll(tmpData)
		return err
	}
	return os.Rename(tmpData, data)
}
