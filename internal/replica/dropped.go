package replica

import (
	"os"
	"path/filepath"
	"slices"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/durable"
	"github.com/gopegasus/pegasus/internal/idl"
)

// Dropped tables. The meta keeps a dropped table until it expires, and it can be recalled
// meanwhile (operations.md §5), so a drop does not delete anything here: the table's
// replicas stop (their stores flushed, as a Shutdown leaves them) and keep their data and
// raft state, with a marker file in their directories so a restart does not reopen them.
// When the meta assigns the partition again (a recall), the replica reopens what it kept and
// rejoins its group. When the meta no longer knows the table at all (it expired and was
// purged), the data is deleted.

// heldFile marks the directory of a replica of a dropped table.
const heldFile = "dropped"

// applyDrops acts on a sync answer's dropped and purged tables: the replicas of dropped
// tables are stopped and kept, those of purged tables deleted. It runs on the sync
// goroutine.
func (s *Server) applyDrops(resp *cluster.SyncResponse) {
	s.dropped = make(map[int32]bool, len(resp.DroppedApps))
	for _, app := range resp.DroppedApps {
		s.dropped[app] = true
	}
	purged := func(app int32) bool {
		return resp.MaxAppID > 0 && app <= resp.MaxAppID && !slices.Contains(resp.Apps, app)
	}
	s.mu.RLock()
	var hold, remove []idl.GPID
	for pid := range s.parts {
		switch {
		case s.dropped[pid.AppID]:
			hold = append(hold, pid)
		case purged(pid.AppID):
			remove = append(remove, pid)
		}
	}
	s.mu.RUnlock()
	for _, pid := range hold {
		s.holdPartition(pid)
	}
	for _, pid := range remove {
		s.dropPartition(pid)
	}
	for pid := range s.held {
		if purged(pid.AppID) {
			s.removeHeld(pid)
		}
	}
}

// holdPartition stops a replica of a dropped table and keeps its data: the store is flushed
// and closed, the raft state stays, and the marker file keeps a restart from reopening it.
func (s *Server) holdPartition(pid idl.GPID) {
	p := s.takePartition(pid)
	if p == nil {
		return
	}
	if err := p.close(true); err != nil {
		p.lg.Warn("close store of a dropped table's partition", "err", err)
	}
	dir := s.partitionDir(pid)
	if err := durable.ReplaceFile(filepath.Join(dir, heldFile), nil); err != nil {
		p.lg.Error("mark the partition of a dropped table", "err", err)
	}
	s.held[pid] = true
	p.lg.Info("partition of a dropped table stopped; its data is kept until the table expires")
}

// unhold makes a kept replica openable again, its table recalled.
func (s *Server) unhold(pid idl.GPID) error {
	if err := os.Remove(filepath.Join(s.partitionDir(pid), heldFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	delete(s.held, pid)
	s.lg.Info("partition of a recalled table reopens its data", "gpid", pid.String())
	return nil
}

// removeHeld deletes the data and raft state of a kept replica whose table expired.
func (s *Server) removeHeld(pid idl.GPID) {
	if err := s.rlog.Group(pid).Remove(); err != nil {
		s.lg.Error("remove raft state of an expired table's partition", "gpid", pid.String(), "err", err)
		return
	}
	if err := os.RemoveAll(s.partitionDir(pid)); err != nil {
		s.lg.Error("remove data of an expired table's partition", "gpid", pid.String(), "err", err)
		return
	}
	delete(s.held, pid)
	s.lg.Info("data of an expired dropped table deleted", "gpid", pid.String())
}

// isHeld reports whether the partition directory dir belongs to a dropped table's replica.
func isHeld(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, heldFile))
	return err == nil
}
