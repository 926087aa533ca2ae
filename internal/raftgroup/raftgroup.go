// Package raftgroup holds what every raft group member of a server does the same way,
// whatever its state machine (the metas' cluster map, a partition's store) and however it
// persists its log: the raft configuration, raft's logger on slog, handing a request to the
// raft loop and waiting for its answer ([Submit]), proposal ids and the requests waiting for
// them, and the group's configuration as of a log index.
//
// A member's raft loop owns its [Waiters] and [ConfLog]; neither is safe for concurrent use.
package raftgroup

import (
	"fmt"
	"log/slog"

	"go.etcd.io/raft/v3"
)

// ElectionTicks is the election timeout in ticks; the leader heartbeats every tick.
const ElectionTicks = 10

// NewConfig returns the raft configuration of member id, whose log is storage and whose
// state machine holds every entry up to applied: elections after ElectionTicks silent ticks,
// a heartbeat every tick, check-quorum and pre-vote, messages of at most 1 MiB and 256 in
// flight per follower. Raft's messages go to lg, its informational ones at debug level. The
// caller sets what its group does differently (read-only option, asynchronous storage
// writes).
func NewConfig(id uint64, storage raft.Storage, applied uint64, lg *slog.Logger) *raft.Config {
	return &raft.Config{
		ID:              id,
		ElectionTick:    ElectionTicks,
		HeartbeatTick:   1,
		Storage:         storage,
		Applied:         applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          logger{lg},
	}
}

// logger adapts slog to raft's Logger: raft's info chatter goes to debug level; its fatal
// and panic calls (invariant violations) panic.
type logger struct{ lg *slog.Logger }

func (l logger) Debug(v ...any)                   { l.lg.Debug(fmt.Sprint(v...)) }
func (l logger) Debugf(format string, v ...any)   { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Info(v ...any)                    { l.lg.Debug(fmt.Sprint(v...)) }
func (l logger) Infof(format string, v ...any)    { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Warning(v ...any)                 { l.lg.Warn(fmt.Sprint(v...)) }
func (l logger) Warningf(format string, v ...any) { l.lg.Warn(fmt.Sprintf(format, v...)) }
func (l logger) Error(v ...any)                   { l.lg.Error(fmt.Sprint(v...)) }
func (l logger) Errorf(format string, v ...any)   { l.lg.Error(fmt.Sprintf(format, v...)) }
func (l logger) Fatal(v ...any)                   { panic(fmt.Sprint(v...)) }
func (l logger) Fatalf(format string, v ...any)   { panic(fmt.Sprintf(format, v...)) }
func (l logger) Panic(v ...any)                   { panic(fmt.Sprint(v...)) }
func (l logger) Panicf(format string, v ...any)   { panic(fmt.Sprintf(format, v...)) }
