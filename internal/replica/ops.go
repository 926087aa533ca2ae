package replica

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The long operations on a replica server: backups of the partitions it leads
// (coldbackup.go), restores of the replicas of restored tables (restore.go), and bulk
// loads (bulkload.go). The meta leader asks for them in its sync answers; each runs as a
// job, a goroutine the sync goroutine starts and owns (joined before the sync loop
// returns, and cancelled with it), and its state goes back in the next reports.

// maxBulkDownloads is how many partitions a server downloads for bulk loads at once.
const maxBulkDownloads = 5

// opsJobs are a server's jobs of the long operations. mu guards the maps; the jobs' own
// fields are theirs, read through their accessors.
type opsJobs struct {
	limiter   *backup.Limiter
	downloads chan struct{}
	wg        sync.WaitGroup

	mu       sync.Mutex
	backups  map[backupJobKey]*backupJob
	restores map[idl.GPID]*restoreJob
	bulk     map[idl.GPID]*bulkJob

	// Metrics: bytes sent to and received from block services, and failed jobs.
	uploaded, downloaded, failures atomic.Int64
}

func (o *opsJobs) init(rateMB int) {
	o.limiter = backup.NewLimiter(int64(rateMB) << 20)
	o.downloads = make(chan struct{}, maxBulkDownloads)
	o.backups = map[backupJobKey]*backupJob{}
	o.restores = map[idl.GPID]*restoreJob{}
	o.bulk = map[idl.GPID]*bulkJob{}
}

// provider returns the block service called name.
func (s *Server) provider(name string) (blockservice.Service, error) {
	if s.cfg.BlockServices == nil {
		return nil, blockservice.ErrUnknownProvider
	}
	return s.cfg.BlockServices.Get(name)
}

// reportOps adds the jobs' states to a sync report.
func (s *Server) reportOps(req *cluster.SyncRequest) {
	o := &s.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, j := range o.backups {
		req.Backups = append(req.Backups, j.report())
	}
	for _, j := range o.restores {
		req.Restores = append(req.Restores, j.report())
	}
	for _, j := range o.bulk {
		req.BulkLoads = append(req.BulkLoads, j.report())
	}
	slices.SortFunc(req.Backups, func(a, b cluster.BackupReport) int { return int(a.PartitionIndex - b.PartitionIndex) })
}

// runOps starts, updates and ends the jobs the meta's answer asks for.
func (s *Server) runOps(ctx context.Context, resp *cluster.SyncResponse) {
	s.runBackups(ctx, resp.Backups)
	s.runBulkLoads(ctx, resp.BulkLoads)
}

// waitOps joins every job (their context has ended).
func (s *Server) waitOps() { s.ops.wg.Wait() }

// codeOfOpErr is the Pegasus error name an operation's failure reports.
func codeOfOpErr(err error) string {
	switch {
	case errors.Is(err, backup.ErrCorrupt), errors.Is(err, blockservice.ErrChecksum):
		return wire.ErrCorruption.Name()
	case errors.Is(err, blockservice.ErrNotFound):
		return wire.ErrObjectNotFound.Name()
	case errors.Is(err, blockservice.ErrUnknownProvider), errors.Is(err, blockservice.ErrInvalid):
		return wire.ErrInvalidParameters.Name()
	}
	var ue *blockservice.UnsupportedTypeError
	if errors.As(err, &ue) {
		return wire.ErrInvalidParameters.Name()
	}
	return wire.ErrFileOperationFailed.Name()
}

// opsMetrics are the server's metrics of the long operations.
func (s *Server) opsMetrics() []metric.Metric {
	o := &s.ops
	o.mu.Lock()
	running := int64(0)
	for _, j := range o.backups {
		if !j.finished() {
			running++
		}
	}
	restoring := int64(len(o.restores))
	bulk := int64(len(o.bulk))
	o.mu.Unlock()
	return []metric.Metric{
		metric.CounterOf("block_service_upload_bytes", "Bytes", "The bytes uploaded to block services (backups)", o.uploaded.Load()),
		metric.CounterOf("block_service_download_bytes", "Bytes", "The bytes downloaded from block services (restores, bulk loads)", o.downloaded.Load()),
		metric.CounterOf("ops_failures", "Operations", "The backup, restore and bulk load jobs that failed", o.failures.Load()),
		metric.GaugeOf("backups_running", "Operations", "The partition backups running", running),
		metric.GaugeOf("restores", "Operations", "The replica restores known (running or done)", restoring),
		metric.GaugeOf("bulk_loads", "Operations", "The replicas with a bulk load", bulk),
	}
}
