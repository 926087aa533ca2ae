package meta

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/idl"
)

// The ops driver: one goroutine of the server (started by Run) that moves the long
// operations on while this meta leads. Each round it asks the state loop what is due (a
// function of the replicated state and the clock), does the block-service I/O that needs
// away from the loop (metadata files, deleting old backups), and commits each outcome
// through the raft group. Every step is idempotent: a step a leader did not commit before
// it lost the leadership is done again by the next one.

// DefaultOpsInterval is the period of the ops driver's rounds.
const DefaultOpsInterval = 300 * time.Millisecond

// opsStep is one piece of work of a round: its I/O, then the mutation that records it
// (nil: nothing to record).
type opsStep struct {
	what string
	io   func(ctx context.Context) (*opsMutation, error)
}

// driveOps runs rounds until ctx ends.
func (s *Server) driveOps(ctx context.Context) {
	t := time.NewTicker(s.cfg.OpsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.opsRound(ctx)
	}
}

// opsRound does the steps due now.
func (s *Server) opsRound(ctx context.Context) {
	var steps []opsStep
	if err := s.do(ctx, func() {
		if s.follow() {
			steps = s.m.opsSteps(ctx)
		}
	}); err != nil {
		return
	}
	for _, st := range steps {
		ctx, cancel := context.WithTimeout(ctx, commitTimeout)
		op, err := st.io(ctx)
		if err != nil {
			cancel()
			s.lg.Warn("long operation step failed; retried next round", "step", st.what, "err", err)
			continue
		}
		if op != nil {
			_ = s.do(ctx, func() {
				if !s.follow() {
					return
				}
				if _, err := s.m.commit(ctx, &mutation{Ops: op}); err != nil {
					s.lg.Warn("long operation step not committed", "step", st.what, "err", err)
				}
			})
		}
		cancel()
	}
}

// opsSteps returns the work due now. Steps that need no I/O (starting a policy's backups)
// are committed here, on the loop.
func (m *machine) opsSteps(ctx context.Context) []opsStep {
	if m.state.Ops == nil {
		return nil
	}
	m.startDuePolicies(ctx)
	var steps []opsStep
	for _, r := range m.state.Ops.Backups {
		if r.finished() {
			continue
		}
		run := *r
		run.Parts = slices.Clone(r.Parts)
		svc, err := m.provider(r.Provider)
		if err != nil {
			steps = append(steps, opsStep{what: "fail backup", io: func(context.Context) (*opsMutation, error) {
				return &opsMutation{FinishBackup: &finishBackup{backupKey: backupKey{run.ID, run.AppID}, EndMS: m.cfg.Now().UnixMilli(),
					Err: err.Error()}}, nil
			}})
			continue
		}
		key := backupKey{run.ID, run.AppID}
		switch done, total := m.backupProgress(&run); {
		case !run.MetaWritten:
			steps = append(steps, opsStep{what: "write app_metadata", io: func(ctx context.Context) (*opsMutation, error) {
				p := backup.AppMetadataPath(run.Root, run.ID, run.AppName, run.AppID)
				if _, err := svc.Write(ctx, p, bytes.NewReader(run.AppMetadata), nil); err != nil {
					return nil, err
				}
				return &opsMutation{MetaWritten: &key}, nil
			}})
		case run.Failed || !m.state.tableAvailable(run.AppID):
			reason := run.Error
			if reason == "" {
				reason = fmt.Sprintf("table %d is no longer available", run.AppID)
			}
			steps = append(steps, opsStep{what: "fail backup", io: func(context.Context) (*opsMutation, error) {
				return &opsMutation{FinishBackup: &finishBackup{backupKey: key, EndMS: m.cfg.Now().UnixMilli(), Err: reason}}, nil
			}})
		case done == total:
			end := m.cfg.Now().UnixMilli()
			steps = append(steps, opsStep{what: "finish backup", io: func(ctx context.Context) (*opsMutation, error) {
				st := backup.AppBackupStatus{BackupID: run.ID, AppID: run.AppID, Status: "succeed"}
				if err := backup.WriteJSON(ctx, svc, backup.AppBackupStatusPath(run.Root, run.ID, run.AppName, run.AppID), st); err != nil {
					return nil, err
				}
				info := backup.Info{BackupID: run.ID, StartTimeMS: run.ID, EndTimeMS: end, AppID: run.AppID, AppName: run.AppName}
				if err := backup.WriteJSON(ctx, svc, backup.Dir(run.Root, run.ID)+"/"+backup.InfoFile, info); err != nil {
					return nil, err
				}
				return &opsMutation{FinishBackup: &finishBackup{backupKey: key, EndMS: end}}, nil
			}})
		}
	}
	steps = append(steps, m.expiredBackups()...)
	steps = append(steps, m.bulkLoadSteps()...)
	return steps
}

// nextPolicyRun is when policy p starts its next backups: the first time its start time of
// day (UTC) comes at or after the minute it was created in, then every interval after the
// last run.
func nextPolicyRun(p *backupPolicy) time.Time {
	if p.LastMS != 0 {
		return time.UnixMilli(p.LastMS).Add(time.Duration(p.IntervalSec) * time.Second)
	}
	at, _ := checkStartTime(p.StartTime)
	created := time.UnixMilli(p.CreateMS).UTC()
	first := created.Truncate(24 * time.Hour).Add(at)
	if first.Before(created.Truncate(time.Minute)) {
		first = first.Add(24 * time.Hour)
	}
	return first
}

// startDuePolicies starts the backups of every enabled policy that is due.
func (m *machine) startDuePolicies(ctx context.Context) {
	now := m.cfg.Now()
	for _, p := range m.state.Ops.Policies {
		if p.Disabled || now.Before(nextPolicyRun(p)) {
			continue
		}
		if slices.ContainsFunc(m.state.Ops.Backups, func(r *backupRun) bool { return r.Policy == p.Name && !r.finished() }) {
			continue // the previous run is still going
		}
		id := now.UnixMilli()
		var runs []*backupRun
		for _, appID := range p.AppIDs {
			if t := m.state.tableByID(appID); t != nil && t.Status == idl.AppStatusAvailable && !m.backingUp(appID) {
				runs = append(runs, m.newBackupRun(t, id, p.Provider, "", p.Name))
			}
		}
		next := *p
		next.LastMS = id
		op := &opsMutation{PutPolicy: &next}
		if len(runs) > 0 {
			if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{StartBackups: runs}}); err != nil {
				continue
			}
		}
		if _, err := m.commit(ctx, &mutation{Ops: op}); err == nil {
			m.lg.Info("backup policy started backups", "policy", p.Name, "backup_id", id, "tables", len(runs))
		}
	}
}

// expiredBackups returns the steps deleting each policy's finished backups beyond its
// history count, oldest first, from the provider and then from the state.
func (m *machine) expiredBackups() []opsStep {
	var steps []opsStep
	for _, p := range m.state.Ops.Policies {
		var ids []int64
		for _, r := range m.state.Ops.Backups {
			if r.Policy == p.Name && r.finished() && !slices.Contains(ids, r.ID) {
				ids = append(ids, r.ID)
			}
		}
		slices.Sort(ids)
		if len(ids) <= int(p.HistoryCount) {
			continue
		}
		svc, err := m.provider(p.Provider)
		if err != nil {
			continue
		}
		for _, id := range ids[:len(ids)-int(p.HistoryCount)] {
			var keys []backupKey
			root := ""
			for _, r := range m.state.Ops.Backups {
				if r.Policy == p.Name && r.ID == id {
					keys = append(keys, backupKey{r.ID, r.AppID})
					root = r.Root
				}
			}
			steps = append(steps, opsStep{what: "delete old backup", io: func(ctx context.Context) (*opsMutation, error) {
				if err := svc.RemoveAll(ctx, backup.Dir(root, id)); err != nil {
					return nil, err
				}
				m.lg.Info("old backup deleted", "policy", p.Name, "backup_id", id)
				// One key per step: the next round removes the policy's other tables of
				// this id (their directory is gone already, which RemoveAll accepts).
				return &opsMutation{RemoveBackup: &keys[0]}, nil
			}})
		}
	}
	return steps
}
