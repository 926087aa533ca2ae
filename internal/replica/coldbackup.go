package replica

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
)

// Backups of partitions (operations.md §3): the primary checkpoints its store (a
// consistent copy at one applied index, the backup's decree of the partition), uploads it
// through the server's rate limiter, writes backup_metadata and current_checkpoint, and
// reports the decree and size. A failure after the uploader's retries is reported, and the
// meta fails the backup. A primary that is no longer the primary drops the job without a
// report, so the meta asks the new one.

type backupJobKey struct {
	gpid idl.GPID
	id   int64
}

// backupJob is one partition's backup. Its fields after task are guarded by mu.
type backupJob struct {
	task   cluster.BackupTask
	cancel context.CancelFunc

	mu       sync.Mutex
	progress int32
	done     bool
	err      string
	decree   int64
	size     int64
	dropped  bool // ended without an outcome to report
}

// wasDropped reports whether the job ended without an outcome (and may be started again).
func (j *backupJob) wasDropped() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.dropped
}

func (j *backupJob) report() cluster.BackupReport {
	j.mu.Lock()
	defer j.mu.Unlock()
	return cluster.BackupReport{AppID: j.task.AppID, PartitionIndex: j.task.PartitionIndex, BackupID: j.task.BackupID,
		Progress: j.progress, Done: j.done, Err: j.err, Decree: j.decree, Size: j.size}
}

func (j *backupJob) finished() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done || j.err != "" || j.dropped
}

// runBackups starts the tasks not running yet, and ends the jobs the meta no longer asks
// for (finished ones are forgotten then).
func (s *Server) runBackups(ctx context.Context, tasks []cluster.BackupTask) {
	o := &s.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	want := map[backupJobKey]bool{}
	for _, t := range tasks {
		k := backupJobKey{idl.GPID{AppID: t.AppID, PartitionIndex: t.PartitionIndex}, t.BackupID}
		want[k] = true
		if j := o.backups[k]; j != nil && !j.wasDropped() {
			continue
		}
		p := s.partition(k.gpid)
		if p == nil || !p.isLeader.Load() {
			continue
		}
		jctx, cancel := context.WithCancel(ctx)
		j := &backupJob{task: t, cancel: cancel}
		o.backups[k] = j
		o.wg.Go(func() {
			defer cancel()
			s.backupPartition(jctx, p, j)
		})
	}
	for k, j := range o.backups {
		if !want[k] {
			j.cancel()
			delete(o.backups, k)
		}
	}
}

// backupPartition runs one backup job.
func (s *Server) backupPartition(ctx context.Context, p *partition, j *backupJob) {
	t := j.task
	lg := p.lg.With("backup_id", t.BackupID)
	fail := func(err error) {
		j.mu.Lock()
		defer j.mu.Unlock()
		if ctx.Err() != nil {
			j.dropped = true // stopped or no longer wanted: nothing to report
			return
		}
		j.err = err.Error()
		s.ops.failures.Add(1)
		lg.Error("partition backup failed", "err", err)
	}
	svc, err := s.provider(t.Provider)
	if err != nil {
		fail(err)
		return
	}
	dir := filepath.Join(s.partitionDir(p.pid), fmt.Sprintf("backup.%d", t.BackupID))
	_ = os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	db, release := p.readDB()
	decree, err := db.Checkpoint(dir)
	release()
	if err != nil {
		fail(err)
		return
	}
	if !p.isLeader.Load() {
		j.mu.Lock()
		j.dropped = true
		j.mu.Unlock()
		return
	}
	md, err := backup.Upload(ctx, svc, dir, backup.PartitionDir(t.Root, t.BackupID, t.AppName, t.AppID, t.PartitionIndex),
		backup.CheckpointName(s.addr), &backup.UploadOptions{
			Decree: int64(decree), Timestamp: time.Now().UnixMilli(), Limiter: s.ops.limiter,
			Bytes: func(n int64) { s.ops.uploaded.Add(n) },
			Progress: func(done, total int64) {
				j.mu.Lock()
				if total > 0 {
					j.progress = int32(min(999, done*1000/total))
				}
				j.mu.Unlock()
			}})
	if err != nil {
		fail(err)
		return
	}
	j.mu.Lock()
	j.done, j.progress, j.decree, j.size = true, 1000, md.CheckpointDecree, md.CheckpointTotalSize
	j.mu.Unlock()
	lg.Info("partition backed up", "decree", decree, "bytes", md.CheckpointTotalSize, "files", len(md.Files))
}
