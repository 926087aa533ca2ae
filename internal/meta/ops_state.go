package meta

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// opsState is the part of the cluster map that the long operations keep (backups, backup
// policies, restores, bulk loads): it is replicated with the rest, so a new meta leader
// continues or reports every operation. Progress below a partition's outcome (bytes sent so
// far) is soft state of the leader, rebuilt from the replica servers' next reports.
type opsState struct {
	Policies  []*backupPolicy `json:"policies,omitempty"`
	Backups   []*backupRun    `json:"backups,omitempty"`
	Restores  []*restoreRun   `json:"restores,omitempty"`
	BulkLoads []*bulkLoad     `json:"bulk_loads,omitempty"`
}

// backupPolicy is a periodic backup of some tables.
type backupPolicy struct {
	Name         string  `json:"name"`
	Provider     string  `json:"provider"`
	AppIDs       []int32 `json:"app_ids"`
	IntervalSec  int64   `json:"interval_sec"`
	HistoryCount int32   `json:"history_count"`
	StartTime    string  `json:"start_time"` // "hh:mm", UTC
	Disabled     bool    `json:"disabled,omitempty"`
	// CreateMS is when the policy was added; LastMS when it last started backups (unix ms).
	CreateMS int64 `json:"create_ms"`
	LastMS   int64 `json:"last_ms,omitempty"`
}

// backupRun is one backup of one table: a one-time backup, or a table's part of a policy's
// run (the tables of a run share its id).
type backupRun struct {
	ID             int64  `json:"id"` // start time, unix ms
	Policy         string `json:"policy,omitempty"`
	Provider       string `json:"provider"`
	BackupPath     string `json:"backup_path,omitempty"`
	Root           string `json:"root"`
	AppID          int32  `json:"app_id"`
	AppName        string `json:"app_name"`
	PartitionCount int32  `json:"partition_count"`
	// AppMetadata is the table's app_info as of the start, written as app_metadata.
	AppMetadata json.RawMessage `json:"app_metadata"`
	MetaWritten bool            `json:"meta_written,omitempty"`
	Parts       []backupPart    `json:"parts"`
	EndMS       int64           `json:"end_ms,omitempty"` // set once finished
	Failed      bool            `json:"failed,omitempty"`
	Error       string          `json:"error,omitempty"`
}

func (r *backupRun) finished() bool { return r.EndMS != 0 }

type backupPart struct {
	Done   bool  `json:"done,omitempty"`
	Decree int64 `json:"decree,omitempty"`
	Size   int64 `json:"size,omitempty"`
}

// restoreRun is the restore of a table from a backup into the new table AppID.
type restoreRun struct {
	AppID int32         `json:"app_id"`
	Parts []restorePart `json:"parts"`
}

type restorePart struct {
	Done    bool   `json:"done,omitempty"`
	Skipped bool   `json:"skipped,omitempty"`
	Code    string `json:"code,omitempty"` // the failure's error name; "" while running or done
	Error   string `json:"error,omitempty"`
}

// opsMutation is one change of opsState; exactly one field is set.
type opsMutation struct {
	StartBackups []*backupRun      `json:"start_backups,omitempty"`
	MetaWritten  *backupKey        `json:"meta_written,omitempty"`
	BackupParts  []backupPartDone  `json:"backup_parts,omitempty"`
	FinishBackup *finishBackup     `json:"finish_backup,omitempty"`
	RemoveBackup *backupKey        `json:"remove_backup,omitempty"`
	PutPolicy    *backupPolicy     `json:"put_policy,omitempty"`
	StartRestore *restoreRun       `json:"start_restore,omitempty"`
	RestoreParts []restorePartDone `json:"restore_parts,omitempty"`
	BulkLoad     *bulkLoadMutation `json:"bulk_load,omitempty"`
}

type backupKey struct {
	ID    int64 `json:"id"`
	AppID int32 `json:"app_id"`
}

type backupPartDone struct {
	backupKey
	Pidx   int32  `json:"pidx"`
	Decree int64  `json:"decree"`
	Size   int64  `json:"size"`
	Err    string `json:"err,omitempty"`
}

type finishBackup struct {
	backupKey
	EndMS int64  `json:"end_ms"`
	Err   string `json:"err,omitempty"`
}

type restorePartDone struct {
	AppID   int32  `json:"app_id"`
	Pidx    int32  `json:"pidx"`
	Skipped bool   `json:"skipped,omitempty"`
	Code    string `json:"code,omitempty"`
	Err     string `json:"err,omitempty"`
}

// clone deep-copies s (nil stays nil). The state is small and plain, so a JSON round trip
// is a faithful copy.
func (s *opsState) clone() *opsState {
	if s == nil {
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic("meta: marshal ops state: " + err.Error()) // plain structs only
	}
	c := &opsState{}
	if err := json.Unmarshal(b, c); err != nil {
		panic("meta: unmarshal ops state: " + err.Error())
	}
	return c
}

func (s *opsState) backup(k backupKey) *backupRun {
	for _, r := range s.Backups {
		if r.ID == k.ID && r.AppID == k.AppID {
			return r
		}
	}
	return nil
}

func (s *opsState) policy(name string) *backupPolicy {
	for _, p := range s.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (s *opsState) restore(appID int32) *restoreRun {
	for _, r := range s.Restores {
		if r.AppID == appID {
			return r
		}
	}
	return nil
}

// applyOps changes the operations' state by op (see clusterMap.apply).
func (m *clusterMap) applyOps(op *opsMutation) result {
	if m.Ops == nil {
		m.Ops = &opsState{}
	}
	s := m.Ops
	ok := result{Code: wire.OK}
	switch {
	case len(op.StartBackups) > 0:
		for _, r := range op.StartBackups {
			if s.backup(backupKey{r.ID, r.AppID}) != nil {
				return result{Code: wire.ErrInvalidState}
			}
		}
		for _, r := range op.StartBackups {
			c := *r
			c.Parts = make([]backupPart, r.PartitionCount)
			s.Backups = append(s.Backups, &c)
		}
		return ok
	case op.MetaWritten != nil:
		if r := s.backup(*op.MetaWritten); r != nil {
			r.MetaWritten = true
		}
		return ok
	case len(op.BackupParts) > 0:
		for _, d := range op.BackupParts {
			r := s.backup(d.backupKey)
			if r == nil || r.finished() || d.Pidx < 0 || int(d.Pidx) >= len(r.Parts) {
				continue
			}
			if d.Err != "" {
				r.Failed = true
				if r.Error == "" {
					r.Error = d.Err
				}
				continue
			}
			r.Parts[d.Pidx] = backupPart{Done: true, Decree: d.Decree, Size: d.Size}
		}
		return ok
	case op.FinishBackup != nil:
		r := s.backup(op.FinishBackup.backupKey)
		if r == nil || r.finished() {
			return result{Code: wire.ErrInvalidState}
		}
		r.EndMS = op.FinishBackup.EndMS
		if op.FinishBackup.Err != "" {
			r.Failed = true
			if r.Error == "" {
				r.Error = op.FinishBackup.Err
			}
		}
		return ok
	case op.RemoveBackup != nil:
		k := *op.RemoveBackup
		s.Backups = slices.DeleteFunc(s.Backups, func(r *backupRun) bool { return r.ID == k.ID && r.AppID == k.AppID })
		return ok
	case op.PutPolicy != nil:
		p := *op.PutPolicy
		if i := slices.IndexFunc(s.Policies, func(q *backupPolicy) bool { return q.Name == p.Name }); i >= 0 {
			s.Policies[i] = &p
		} else {
			s.Policies = append(s.Policies, &p)
		}
		return ok
	case op.StartRestore != nil:
		if s.restore(op.StartRestore.AppID) != nil {
			return result{Code: wire.ErrInvalidState}
		}
		c := *op.StartRestore
		c.Parts = slices.Clone(c.Parts)
		s.Restores = append(s.Restores, &c)
		return ok
	case len(op.RestoreParts) > 0:
		for _, d := range op.RestoreParts {
			r := s.restore(d.AppID)
			if r == nil || d.Pidx < 0 || int(d.Pidx) >= len(r.Parts) {
				continue
			}
			r.Parts[d.Pidx] = restorePart{Done: d.Code == "", Skipped: d.Skipped, Code: d.Code, Error: d.Err}
		}
		return ok
	case op.BulkLoad != nil:
		return m.applyBulkLoad(op.BulkLoad)
	}
	return result{Code: wire.ErrInvalidParameters}
}

// tableAvailable reports whether app id is an available table of m.
func (m *clusterMap) tableAvailable(id int32) bool {
	t := m.tableByID(id)
	return t != nil && t.Status == idl.AppStatusAvailable
}

// resetOps forgets the soft state of the operations (a new leader rebuilds it).
func (m *machine) resetOps() {
	m.progress = map[progressKey]int32{}
	m.bulkReplicas = map[bulkReplicaKey]cluster.BulkLoadReport{}
}

// noteOpsReports records what a replica server's sync reports of the operations.
func (m *machine) noteOpsReports(ctx context.Context, req *cluster.SyncRequest) {
	if m.state.Ops == nil {
		return
	}
	m.noteBackupReports(ctx, req.Backups)
	m.noteRestoreReports(ctx, req.Restores)
	m.noteBulkLoadReports(ctx, req.Node, req.BulkLoads)
}
