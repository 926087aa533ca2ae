package replica

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/raftlog"
)

// What a replica server does when its disk fails (README, "Disk faults"):
//
//   - A full disk (a raft log write fails with ENOSPC) is waited out: the raft log keeps
//     what it could not write staged and tries again every 100 ms; the writes waiting on it
//     are not acknowledged until it is written and fsynced. Meanwhile the server refuses new
//     client writes with ERR_DISK_INSUFFICIENT (Pegasus's answer), and serves reads; the
//     truncation of raft logs (which flushes the stores) waits too. The first write that
//     finds space again ends it.
//   - A failed fsync, or any other failed write, cannot be waited out: what was written
//     since the last good fsync may be gone from the kernel's cache, and a later fsync that
//     succeeds would not say otherwise. The raft log answers the round's writes with the
//     error and takes no more; every partition stops; the server stops itself (fail-stop),
//     Run returning an error that wraps [ErrDiskFailed], and `pegasus replica` exits non-zero.
//     Its process must be restarted (by its supervisor) once the disk is repaired: it then
//     replays what is on the disk, and raft brings its replicas up to date from their
//     groups, as after a crash. Meanwhile the other replicas of its partitions elect new
//     primaries, and the meta declares it dead after the node grace period.

// ErrDiskFailed is what [Server.Run] returns (wrapped, with the cause) when the server
// stopped itself because a write or fsync of its raft log failed.
var ErrDiskFailed = errors.New("replica: a write or fsync of the raft log failed; the server stopped")

// errDiskInsufficient refuses a client write while the disk is full: ERR_DISK_INSUFFICIENT.
var errDiskInsufficient = errors.New("replica: the disk is full")

// diskCounters count what the disk did to the server.
type diskCounters struct {
	refused atomic.Int64 // client writes refused with ERR_DISK_INSUFFICIENT
	failure atomic.Pointer[error]
}

// diskRefusal returns errDiskInsufficient while the raft log waits for space.
func (s *Server) diskRefusal() error {
	if s.rlog.NoSpace() {
		s.disk.refused.Add(1)
		return errDiskInsufficient
	}
	return nil
}

// watchDisk stops the server when its raft log fails for good (see above); it returns
// with ctx.
func (s *Server) watchDisk(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-s.rlog.Failed():
	}
	cause := s.rlog.Health().Failed
	err := fmt.Errorf("%w: %v", ErrDiskFailed, cause)
	s.disk.failure.Store(&err)
	s.lg.Error("the disk failed: the server stops; restart it once the disk is repaired, it recovers from what the disk holds", "err", cause)
	_ = s.rpc.Close()
}

// diskFailure returns the failure that stopped the server, if one did.
func (s *Server) diskFailure() error {
	if p := s.disk.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// DiskHealth returns what the server's raft log says of the disk: whether it is full,
// the error that stopped it, how many writes and fsyncs failed. Safe for concurrent use.
func (s *Server) DiskHealth() raftlog.Health { return s.rlog.Health() }

// DiskRefusals returns how many client writes were refused with ERR_DISK_INSUFFICIENT.
func (s *Server) DiskRefusals() int64 { return s.disk.refused.Load() }

func (s *Server) diskMetrics() []metric.Metric {
	h := s.rlog.Health()
	return []metric.Metric{
		metric.GaugeOf("disk_insufficient", "Status", "1 while the disk is full: the raft log waits for space and client writes are refused with ERR_DISK_INSUFFICIENT", b2i(h.NoSpace)),
		metric.GaugeOf("disk_failed", "Status", "1 once a raft log fsync or write failed: the server stops and must be restarted", b2i(h.Failed != nil)),
		metric.CounterOf("disk_write_errors", "Operations", "The raft log writes that failed (a full disk included)", h.WriteErrors),
		metric.CounterOf("disk_sync_errors", "Operations", "The raft log fsyncs that failed", h.SyncErrors),
		metric.CounterOf("disk_insufficient_writes", "Requests", "The client writes refused with ERR_DISK_INSUFFICIENT", s.disk.refused.Load()),
	}
}
