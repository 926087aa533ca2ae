package console

import "context"

// CompactionStatusOf reads a server's /replica/manual_compaction for table app as the
// sampler does, for the tests of package console_test.
func CompactionStatusOf(ctx context.Context, addr string, app int32) (queuing, running, finished, idle int64, err error) {
	cc, err := New(Config{}).compactionOf(ctx, addr, app)
	return cc.Queuing, cc.Running, cc.Finished, cc.Idle, err
}
