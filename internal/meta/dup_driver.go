package meta

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Timing of the duplications' steps toward their follower clusters.
const (
	// dupDriverPeriod is how often the meta leader looks for a step to take.
	dupDriverPeriod = time.Second
	// dupStepTimeout bounds one step (the follower cluster's metas may be slow or gone: the
	// step is retried a period later).
	dupStepTimeout = 10 * time.Second
)

// dupStep is one duplication's next step toward its follower cluster: from DS_PREPARE, once
// every partition prepared its checkpoint, create the follower table (follower status
// "creating") and go to DS_APP; from DS_APP, once every partition seeded the follower, mark
// the follower created and, once it has its primaries (and secondaries), go to DS_LOG.
type dupStep struct {
	appID, dupID int32
	from         idl.DuplicationStatus
	remote       string
	metas        []string
	follower     dup.FollowerTable
}

// dupDriver takes the duplications' steps on the meta leader. The steps are a function of
// the cluster map's statuses and progress, so a new leader resumes where the old one was
// (each step is safe to repeat: the follower's meta takes the same create again). Its
// remote meta clients are owned by runDupDriver's goroutine.
type dupDriver struct {
	s       *Server
	clients map[string]*metaclient.Client
}

// runDupDriver takes duplication steps until ctx ends.
func (s *Server) runDupDriver(ctx context.Context) {
	d := &dupDriver{s: s, clients: map[string]*metaclient.Client{}}
	defer func() {
		for _, c := range d.clients {
			_ = c.Close()
		}
	}()
	t := time.NewTicker(dupDriverPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The steps run at once: a follower cluster that does not answer delays only its
		// own duplications.
		var wg sync.WaitGroup
		for _, st := range d.steps(ctx) {
			mc := d.client(st.remote, st.metas)
			wg.Go(func() { d.take(ctx, st, mc) })
		}
		wg.Wait()
	}
}

// steps lists the steps due and marks their duplications busy (a user's status change is
// refused with ERR_BUSY until the step is over).
func (d *dupDriver) steps(ctx context.Context) []dupStep {
	var out []dupStep
	_ = d.s.do(ctx, func() {
		if !d.s.follow() {
			return
		}
		m := d.s.m
		if m.dupDisabled() {
			return
		}
		for _, t := range m.state.Tables {
			if t.Status != idl.AppStatusAvailable {
				continue
			}
			for _, x := range t.Dups {
				if !stepDue(x) || m.dups.busy[x.ID] {
					continue
				}
				metas, ok := m.cfg.Peers.Metas(x.Remote)
				if !ok {
					m.lg.Error("duplication to a cluster no longer in the configuration", "table", t.Name, "dupid", x.ID, "remote", x.Remote)
					continue
				}
				m.dups.busy[x.ID] = true
				out = append(out, dupStep{appID: t.AppID, dupID: x.ID, from: x.Status, remote: x.Remote, metas: metas,
					follower: dup.FollowerTable{Name: x.RemoteApp, PartitionCount: t.PartitionCount,
						ReplicaCount: x.RemoteReplicas, Envs: t.Envs, Master: m.cfg.ClusterName,
						MasterMetas: d.s.raft.status.Load().voters, MasterApp: t.Name}})
			}
		}
	})
	return out
}

// stepDue reports whether x waits for the driver: every partition did its part of the
// current step.
func stepDue(x *duplication) bool {
	for _, p := range x.Partitions {
		switch x.Status {
		case idl.DupStatusPrepare:
			if p.Checkpoint < 0 {
				return false
			}
		case idl.DupStatusApp:
			if p.Confirmed < 0 {
				return false
			}
		default:
			return false
		}
	}
	return x.Status == idl.DupStatusPrepare || x.Status == idl.DupStatusApp
}

// client returns the meta client of the remote cluster (runDupDriver's goroutine only).
func (d *dupDriver) client(remote string, metas []string) *metaclient.Client {
	c := d.clients[remote]
	if c == nil {
		c = metaclient.New(metaclient.Config{Addrs: metas, Logger: d.s.lg, ConnConfig: dup.ConnConfig(d.s.cfg.DupTLS)})
		d.clients[remote] = c
	}
	return c
}

// take carries out one step and records its outcome.
func (d *dupDriver) take(ctx context.Context, st dupStep, mc *metaclient.Client) {
	sctx, cancel := context.WithTimeout(ctx, dupStepTimeout)
	var (
		to   idl.DuplicationStatus
		done bool
		err  error
	)
	switch st.from {
	case idl.DupStatusPrepare:
		to = idl.DupStatusApp
		err = dup.CreateFollower(sctx, mc, st.follower, dup.FollowerCreating)
		done = err == nil
	case idl.DupStatusApp:
		to = idl.DupStatusLog
		if err = dup.CreateFollower(sctx, mc, st.follower, dup.FollowerCreated); err == nil {
			done, err = dup.FollowerReady(sctx, mc, st.follower.Name)
		}
	}
	cancel()
	err = dup.Explain(err, d.s.cfg.DupTLS != nil)
	_ = d.s.do(ctx, func() {
		m := d.s.m
		delete(m.dups.busy, st.dupID)
		delete(m.dups.stepErr, st.dupID)
		lg := m.lg.With("app_id", st.appID, "dupid", st.dupID, "remote", st.remote, "remote_app", st.follower.Name)
		if err != nil {
			m.dups.stepErr[st.dupID] = err.Error()
			if errors.Is(err, wire.ErrAppExist) {
				lg.Error("the follower cluster has another table of the follower's name; remove the duplication or that table", "err", err)
			} else {
				lg.Warn("duplication step failed; will retry", "from", st.from.String(), "err", err)
			}
			return
		}
		if !done || !d.s.follow() {
			return
		}
		from := st.from
		res, err := m.commit(ctx, &mutation{ModifyDup: &modifyDup{AppID: st.appID, ID: st.dupID, From: &from, Status: &to}})
		if err == nil && res.Code == wire.OK {
			lg.Info("duplication step done", "status", to.String())
		}
	})
}
