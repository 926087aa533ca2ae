package testcluster

import (
	"fmt"
	"path/filepath"
	"testing"
)

// AddReplica starts one more replica server, on 127.0.0.1:0 with a data directory of its
// own, as a new `pegasus replica --metas ...` joining the cluster would; it returns the
// server's address once it runs (the meta learns of it at its first sync). It stops when
// the test ends, and StopReplica and StartReplica work on it as on the others.
func (c *Cluster) AddReplica(t testing.TB) string {
	t.Helper()
	c.mu.Lock()
	r := &server{addr: "127.0.0.1:0", dir: filepath.Join(c.dir, fmt.Sprintf("replica%d", len(c.replicas)+1))}
	c.replicas = append(c.replicas, r)
	c.mu.Unlock()
	c.startReplica(t, r)
	return r.addr
}
