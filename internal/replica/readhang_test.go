package replica

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The chaos kill run's hung read, replayed: the placement's first member restarts behind its
// group, which hands it the leadership back (the preferred-primary restoration) as soon as it
// has caught up; the member that handed it over is stopped right after. Reads at the new
// leader must be served (or at worst fail within their timeout), never hang.
func TestRestoredPrimaryServesReadsAfterHandoverMemberStops(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			g, addrs := newGroup(t, 3)
			b := addrs[0]
			g.setMembers(addrs...)
			if l := g.leader(addrs...); l != b {
				poll.Until(t, "the preferred member to lead", func() bool { return g.leader(addrs...) == b })
			}
			n := 0
			for ; n < 30; n++ {
				g.put(addrs, n)
			}
			g.stops[b]()
			others := addrs[1:]
			for ; n < 80; n++ {
				g.put(others, n)
			}
			old := g.leader(others...)
			g.run(g.dirs[b], b)
			poll.Until(t, "the restarted member to lead again", func() bool {
				p := g.servers[b].partition(replPID)
				return p != nil && p.isLeader.Load()
			})
			g.stops[old]()
			conn := rpc.NewConn(b, rpc.ConnConfig{})
			defer conn.Close()
			for i := range n {
				blob := idl.Blob(key.Encode([]byte(fmt.Sprintf("k%04d", i)), nil))
				var resp idl.ReadResponse
				var err error
				ok := poll.Wait(t.Context(), func(ctx context.Context) (bool, error) {
					cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					resp = idl.ReadResponse{}
					err = conn.Call(cctx, wire.Header{AppID: replApp, ClientTimeout: 5000}, idl.RPCGet, &blob, &resp)
					if err != nil && cctx.Err() != nil {
						return false, fmt.Errorf("read of k%04d at the restored leader hung: %w", i, err)
					}
					return err == nil && resp.Error == 0, nil
				})
				if ok != nil {
					t.Fatal(ok)
				}
				if string(resp.Value) != fmt.Sprint(i) {
					t.Fatalf("k%04d: %q", i, resp.Value)
				}
			}
		})
	}
}
