package cluster

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
)

// The placement part of a sync's answer (its assignments, the tables' envs, the dropped
// and existing tables) seldom changes from one sync to the next, and with hundreds of
// partitions it is most of the answer's bytes. A meta therefore gives each answer a hash of
// that part (SyncResponse.AssignmentsHash); a replica server sends back the hash of the last
// one it acted on (SyncRequest.KnownAssignments), and when the new answer's part is the same
// the meta leaves it out (SyncResponse.Unchanged), so the server acts on the one it kept.
// The hash is seeded per meta process: another meta (a new leader) never matches, and
// answers in full.

// PlacementHash returns the hash, under seed, of r's placement part: Assignments (envs
// included, whether in each assignment or in Envs), DroppedApps, Apps and MaxAppID. It is
// never 0.
func PlacementHash(seed maphash.Seed, r *SyncResponse) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var buf [8]byte
	n := func(v int64) {
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	flag := func(b bool) {
		if b {
			n(1)
		} else {
			n(0)
		}
	}
	str := func(s string) {
		n(int64(len(s)))
		h.WriteString(s)
	}
	envs := func(e map[string]string) {
		n(int64(len(e)))
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			str(k)
			str(e[k])
		}
	}
	n(int64(len(r.Assignments)))
	for i := range r.Assignments {
		a := &r.Assignments[i]
		n(int64(a.AppID))
		n(int64(a.PartitionIndex))
		str(a.AppName)
		n(int64(a.PartitionCount))
		n(int64(len(a.Members)))
		for _, m := range a.Members {
			str(m)
		}
		flag(a.Envs != nil)
		if a.Envs != nil {
			envs(a.Envs)
		}
		flag(a.Join)
		n(int64(len(a.Dups)))
		for _, d := range a.Dups {
			n(int64(d.ID))
			str(d.Remote)
			str(d.RemoteApp)
			n(int64(d.Status))
			n(int64(d.FailMode))
			n(d.Confirmed)
			n(d.Checkpoint)
			n(d.CreateMS)
		}
		flag(a.Split != nil)
		if s := a.Split; s != nil {
			n(int64(s.NewCount))
			n(int64(s.Status))
			flag(s.Commit)
		}
		n(int64(a.SplitParent))
	}
	apps := make([]int32, 0, len(r.Envs))
	for app := range r.Envs {
		apps = append(apps, app)
	}
	slices.Sort(apps)
	n(int64(len(apps)))
	for _, app := range apps {
		n(int64(app))
		envs(r.Envs[app])
	}
	n(int64(len(r.DroppedApps)))
	for _, app := range r.DroppedApps {
		n(int64(app))
	}
	n(int64(len(r.Apps)))
	for _, app := range r.Apps {
		n(int64(app))
	}
	n(int64(r.MaxAppID))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// OmitPlacement leaves r's placement part out, as the server that knows it by its hash
// keeps it.
func (r *SyncResponse) OmitPlacement() {
	r.Assignments, r.Envs, r.DroppedApps, r.Apps = nil, nil, nil, nil
	r.Unchanged = true
}

// RestorePlacement puts back into an answer marked Unchanged the placement part of prev, the
// last full answer its server acted on.
func (r *SyncResponse) RestorePlacement(prev *SyncResponse) {
	r.Assignments, r.Envs, r.DroppedApps, r.Apps = prev.Assignments, prev.Envs, prev.DroppedApps, prev.Apps
	r.MaxAppID = prev.MaxAppID
}
