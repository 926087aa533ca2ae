package meta

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The balancer's remote commands (meta.lb.* and meta.live_percentage).
//
// Operators' tools (Pegasus's admin-cli, its rolling-update and node-removal scripts) tune
// the leader's balancer and its replacement of lost replicas with these commands, and check
// their answers as Pegasus 2.x gives them: "OK" once set, the current value when asked
// without an argument, "ERR: invalid arguments" otherwise (the black list answers "set ok",
// "clear ok" and "get ok: ..."). As in Pegasus, the values live in the memory of the meta
// they were sent to, not in the replicated cluster map: they act while that meta leads, a
// meta that takes over starts from its own (from its settings, until told otherwise), and a
// restart forgets them. Only the serving leader takes them; the others answer where the
// leader is. The commands that change a value are refused, with access control on, to
// anyone but a super user or a cluster member (remotecmd.RegisterMutating).

// lbControls are the leader's balancer controls, set by the remote commands.
type lbControls struct {
	// onlyMovePrimary and onlyPrimaryBalancer both keep the lively balancer to primary
	// moves: our balancer never copies a primary's replica to balance primaries, so the
	// two flags of Pegasus have one effect here.
	onlyMovePrimary, onlyPrimaryBalancer bool
	// inTurn is accepted and shown only: the balancer plans for the cluster as a whole, all
	// tables at once, rather than per table.
	inTurn bool
	// movesPerNode bounds the moves under way at once on one replica server; 0 holds the
	// balancer, the decommissions and the replacement of lost replicas.
	movesPerNode int
	// blackList holds the replica servers that receive no new replica, sorted.
	blackList []string
	// assignDelayMS is how long a dead server's replicas wait before being replaced, in ms.
	assignDelayMS int
	// livePercentage holds the replacement while fewer replica servers are alive.
	livePercentage int
}

// defaultLBControls returns the controls that cfg's settings give.
func defaultLBControls(cfg Config) lbControls {
	c := lbControls{movesPerNode: max(cfg.BalanceMovesPerNode, 1)}
	if cfg.AssignDelay != nil {
		c.assignDelayMS = int(*cfg.AssignDelay / time.Millisecond)
	}
	if cfg.LivePercentage != nil {
		c.livePercentage = *cfg.LivePercentage
	}
	return c
}

// blackListed reports whether addr must receive no new replica.
func (m *machine) blackListed(addr string) bool {
	_, ok := slices.BinarySearch(m.lb.blackList, addr)
	return ok
}

// replicaTargets returns where new replicas may go, sorted: the alive replica servers that
// are neither leaving nor black-listed.
func (m *machine) replicaTargets() []string {
	return slices.DeleteFunc(m.placeable(), m.blackListed)
}

// tooFewAlive reports whether fewer than the live percentage of the known replica servers
// are alive, which holds the replacement of lost replicas: when many servers go at once
// (a rack, a network partition), copying all their data elsewhere would do more harm than
// waiting for them.
func (m *machine) tooFewAlive() bool {
	return len(m.aliveNodes())*100 < m.lb.livePercentage*len(m.nodes)
}

// lbOK and lbInvalidArgs are Pegasus's answers to a set and to a bad argument.
const (
	lbOK          = "OK"
	lbInvalidArgs = "ERR: invalid arguments"
)

// lbCommandTimeout bounds the wait for the state goroutine to take a command.
const lbCommandTimeout = 10 * time.Second

// lbCommand is one of the balancer's remote commands.
type lbCommand struct {
	name, help string
	mutating   bool
	run        func(m *machine, args []string) string
}

// lbCommands returns the balancer's remote commands.
func lbCommands() []lbCommand {
	boolCmd := func(name, what string, flag func(c *lbControls) *bool) lbCommand {
		return lbCommand{name: name, help: name + " [true|false]: " + what + "; without an argument, the current value", mutating: true,
			run: func(m *machine, args []string) string {
				f := flag(&m.lb)
				if len(args) == 0 {
					return strconv.FormatBool(*f)
				}
				switch args[0] {
				case "true", "false":
					*f = args[0] == "true"
					m.lg.Info("balancer control set by remote command", "control", name, "value", *f)
					return lbOK
				}
				return lbInvalidArgs
			}}
	}
	// intCmd is a command setting an integer control: N in [lo, hi], or DEFAULT for the
	// value of the settings.
	intCmd := func(name, what string, lo, hi int, field func(c *lbControls) *int) lbCommand {
		return lbCommand{name: name, help: name + " [N|DEFAULT]: " + what + "; without an argument, the current value", mutating: true,
			run: func(m *machine, args []string) string {
				f := field(&m.lb)
				if len(args) == 0 {
					return strconv.Itoa(*f)
				}
				def := defaultLBControls(m.cfg)
				v := *field(&def)
				if !strings.EqualFold(args[0], "DEFAULT") {
					n, err := strconv.Atoi(args[0])
					if err != nil || n < lo || n > hi {
						return lbInvalidArgs
					}
					v = n
				}
				*f = v
				m.lg.Info("balancer control set by remote command", "control", name, "value", v)
				return lbOK
			}}
	}
	const maxInt32 = 1<<31 - 1
	return []lbCommand{
		boolCmd("meta.lb.only_move_primary", "in lively mode, move only primaries (no replica is moved to balance)",
			func(c *lbControls) *bool { return &c.onlyMovePrimary }),
		boolCmd("meta.lb.only_primary_balancer", "in lively mode, balance only primaries (same effect as meta.lb.only_move_primary)",
			func(c *lbControls) *bool { return &c.onlyPrimaryBalancer }),
		boolCmd("meta.lb.balancer_in_turn", "accepted for Pegasus's tools; no effect, the balancer plans for all tables at once",
			func(c *lbControls) *bool { return &c.inTurn }),
		intCmd("meta.lb.add_secondary_max_count_for_one_node",
			"the moves under way at once on one replica server (setting balance_moves_per_node); 0 holds every move and replacement",
			0, maxInt32, func(c *lbControls) *int { return &c.movesPerNode }),
		intCmd("meta.lb.assign_delay_ms",
			"how long, in ms, a dead replica server's replicas wait before being replaced (setting replica_assign_delay_ms_for_dropouts)",
			0, maxInt32, func(c *lbControls) *int { return &c.assignDelayMS }),
		intCmd("meta.live_percentage",
			"below this percentage (0 to 100) of alive replica servers, lost replicas are not replaced (setting node_live_percentage_threshold_for_update)",
			0, 100, func(c *lbControls) *int { return &c.livePercentage }),
		{name: "meta.lb.assign_secondary_black_list",
			help:     "meta.lb.assign_secondary_black_list [IP:PORT,IP:PORT,...|clear]: the replica servers that receive no new replica (from the balancer, the replacement of lost replicas or a new table); without an argument, the list",
			mutating: true, run: (*machine).setBlackList},
		{name: "meta.lb.get_balance_operation_count",
			help: "meta.lb.get_balance_operation_count [total|move_pri|copy_pri|copy_sec|detail]: the balancing moves under way (default total)",
			run:  func(m *machine, args []string) string { return balanceOpCountText(m.balanceOpCounts(), args) }},
	}
}

// registerLBCommands adds the balancer's remote commands; they run on the state goroutine
// of the serving leader.
func (s *Server) registerLBCommands() {
	for _, c := range lbCommands() {
		fn := func(args []string) (string, error) {
			return s.lbOnLeader(func() string { return c.run(s.m, args) })
		}
		if c.mutating {
			s.cmds.RegisterMutating(c.name, c.help, fn)
		} else {
			s.cmds.Register(c.name, c.help, fn)
		}
	}
}

// setBlackList serves meta.lb.assign_secondary_black_list.
func (m *machine) setBlackList(args []string) string {
	switch {
	case len(args) == 0:
		return "get ok: " + strings.Join(m.lb.blackList, ",")
	case len(args) != 1:
		return "invalid arguments"
	case args[0] == "clear":
		m.lb.blackList = nil
		m.lg.Info("assign secondary black list cleared by remote command")
		return "clear ok"
	}
	var list []string
	for _, a := range strings.Split(args[0], ",") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(a))
		if err != nil {
			return "invalid arguments"
		}
		list = append(list, ap.String())
	}
	slices.Sort(list)
	m.lb.blackList = slices.Compact(list)
	m.lg.Info("assign secondary black list set by remote command", "nodes", m.lb.blackList)
	return "set ok"
}

// balanceOpCountText is meta.lb.get_balance_operation_count's answer for args.
func balanceOpCountText(o balanceOps, args []string) string {
	what := "total"
	if len(args) > 0 {
		what = args[0]
	}
	switch what {
	case "total":
		return fmt.Sprintf("total=%d", o.total())
	case "move_pri":
		return fmt.Sprintf("move_pri=%d", o.movePri)
	case "copy_pri":
		return fmt.Sprintf("copy_pri=%d", o.copyPri)
	case "copy_sec":
		return fmt.Sprintf("copy_sec=%d", o.copySec)
	case "detail":
		return o.text()
	}
	return lbInvalidArgs
}

// lbOnLeader runs fn on the state goroutine when this meta is the serving leader, and returns
// its answer; otherwise it fails, naming the leader when known.
func (s *Server) lbOnLeader(fn func() string) (string, error) {
	var out string
	led := false
	err := s.doWithin(lbCommandTimeout, func() {
		if led = s.follow(); led {
			s.m.refresh()
			out = fn()
		}
	})
	switch {
	case err != nil:
		return "", err
	case !led:
		if st := s.raft.status.Load(); st.leader != "" && !st.isLeader {
			return "", fmt.Errorf("%w; run the command on %s", errNotLeader, st.leader)
		}
		return "", fmt.Errorf("%w; retry on the leader", errNotLeader)
	}
	return out + "\n", nil
}

// doWithin is [Server.do] for a caller without a context: it gives up after d.
func (s *Server) doWithin(d time.Duration, fn func()) error {
	t := time.NewTimer(d)
	defer t.Stop()
	r := request{fn: fn, done: make(chan struct{})}
	select {
	case s.reqs <- r:
	case <-t.C:
		return errors.New("meta: busy; retry")
	case <-s.loopDone:
		return errStopped
	}
	<-r.done // a request the loop took always runs to the end
	return nil
}
