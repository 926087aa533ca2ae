package pegasus

import (
	"github.com/gopegasus/pegasus/internal/metaclient"
)

// newMetaClient returns the client's meta client: configuration queries go to the meta
// leader it remembers; when that one fails, does not answer within
// [metaclient.DefaultAttemptTimeout] or answers ERR_FORWARD_TO_OTHERS, a leader hint in the
// reply is followed, else every other meta server is asked at once and the first real
// answer wins (protocol.md §6.2). It shares the client's connection pool.
func newMetaClient(c *client) *metaclient.Client {
	return metaclient.New(metaclient.Config{Addrs: c.cfg.MetaServers, Pool: c.pool, Logger: c.lg})
}
