package gocli2018

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/XiaoMi/pegasus-go-client/pegasus"
	"github.com/XiaoMi/pegasus-go-client/pegasus2"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// Writes sent right after create_app returns all succeed: the reply comes once every partition
// is led by its intended primary (the one it names), so the 2018 client's first routes hold.
func TestWritesRightAfterCreate(t *testing.T) {
	logTo(t)
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 3})
	ad := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer ad.Close()
	cl := pegasus2.NewClient(pegasus.Config{MetaServers: c.MetaAddrs()})
	defer cl.Close()
	var errs atomic.Int64
	for ti := range 3 {
		name := fmt.Sprintf("t%d", ti)
		start := time.Now()
		if _, err := ad.CreateTable(t.Context(), name, 16, 3, nil, 120); err != nil {
			t.Fatal(err)
		}
		t.Logf("create %s took %v", name, time.Since(start))
		tb, err := cl.OpenTable(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 200 {
					ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
					err := tb.Set(ctx, fmt.Appendf(nil, "h%d-%d", g, i), []byte("s"), []byte("v"))
					cancel()
					if err != nil && errs.Add(1) <= 5 {
						t.Errorf("%s: %v", name, err)
					}
				}
			})
		}
		wg.Wait()
	}
	if n := errs.Load(); n > 0 {
		t.Fatalf("%d writes failed, want none", n)
	}
}
