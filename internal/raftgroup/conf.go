package raftgroup

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// ConfLog is a group's configuration (voters and learners) as of every log index from a
// starting point on: the configuration at that point, and the one after each membership
// change applied since. A member that truncates its log at an index stores the
// configuration as of that index with the truncation point, and snapshots carry the
// configuration as of their index. The zero ConfLog starts with an empty configuration.
type ConfLog struct {
	cur     raftpb.ConfState
	base    raftpb.ConfState // as of the starting point
	changes []confChange     // applied after the starting point, in index order
}

// confChange is the configuration after the membership change at index.
type confChange struct {
	index uint64
	cs    raftpb.ConfState
}

// Reset starts the log over at a snapshot or truncation point whose configuration is cs,
// forgetting everything before.
func (c *ConfLog) Reset(cs raftpb.ConfState) {
	c.cur, c.base, c.changes = cs, cs, nil
}

// Current returns the configuration as of the last entry applied.
func (c *ConfLog) Current() raftpb.ConfState { return c.cur }

// Apply applies the membership change of conf-change entry e (either version) to rn and
// records the configuration after it as of e.Index. It returns the change when e is a
// raftpb.EntryConfChange, nil when it is a raftpb.EntryConfChangeV2, and an error when e
// is neither or does not decode.
func (c *ConfLog) Apply(rn *raft.RawNode, e *raftpb.Entry) (*raftpb.ConfChange, error) {
	var cc raftpb.ConfChangeI
	var v1 *raftpb.ConfChange
	switch e.Type {
	case raftpb.EntryConfChange:
		v1 = new(raftpb.ConfChange)
		if err := v1.Unmarshal(e.Data); err != nil {
			return nil, err
		}
		cc = *v1
	case raftpb.EntryConfChangeV2:
		var v2 raftpb.ConfChangeV2
		if err := v2.Unmarshal(e.Data); err != nil {
			return nil, err
		}
		cc = v2
	default:
		return nil, fmt.Errorf("raftgroup: entry %d (%v) is not a membership change", e.Index, e.Type)
	}
	c.cur = *rn.ApplyConfChange(cc)
	c.changes = append(c.changes, confChange{e.Index, c.cur})
	return v1, nil
}

// Truncate returns the configuration as of log index i (i at or after the starting point)
// and makes i the new starting point: the log is truncated there.
func (c *ConfLog) Truncate(i uint64) raftpb.ConfState {
	cs := c.base
	n := 0
	for _, ch := range c.changes {
		if ch.index <= i {
			cs = ch.cs
			continue
		}
		c.changes[n] = ch
		n++
	}
	c.changes = c.changes[:n]
	c.base = cs
	return cs
}

// IsMember reports whether id is a voter or a learner of cs, outgoing or incoming: a member
// whose raft messages the group takes.
func IsMember(cs raftpb.ConfState, id uint64) bool {
	for _, ids := range [][]uint64{cs.Voters, cs.Learners, cs.VotersOutgoing, cs.LearnersNext} {
		if slices.Contains(ids, id) {
			return true
		}
	}
	return false
}
