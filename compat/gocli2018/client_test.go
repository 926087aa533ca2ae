package gocli2018

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"slices"
	"testing"
	"time"

	"github.com/XiaoMi/pegasus-go-client/pegalog"
	"github.com/XiaoMi/pegasus-go-client/pegasus"
	"github.com/XiaoMi/pegasus-go-client/pegasus2"

	"github.com/gopegasus/pegasus/internal/testcluster"
)

// logTo sends the 2018 client's log (one logger for the whole process) to the test's output
// until the test ends.
func logTo(t *testing.T) {
	pegalog.SetLogger(log.New(t.Output(), "gocli2018: ", log.Lmicroseconds))
	t.Cleanup(func() { pegalog.SetLogger(log.New(io.Discard, "", 0)) })
}

// openTable opens table name of cluster c with the 2018 client, given the meta leader last:
// the client asks the metas in order, so the others first answer ERR_FORWARD_TO_OTHERS with
// the leader's address as a partition's primary.
func openTable(t *testing.T, c *testcluster.Cluster, name string) pegasus.TableConnector {
	t.Helper()
	leader := c.MetaLeader(t)
	metas := slices.DeleteFunc(c.MetaAddrs(), func(a string) bool { return a == leader })
	cl := pegasus2.NewClient(pegasus.Config{MetaServers: append(metas, leader)})
	t.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tb, err := cl.OpenTable(ctx, name)
	if err != nil {
		t.Fatalf("open table %s: %v", name, err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// TestOperations opens a table with the 2018 client on a cluster of 3 metas and 3 replica
// servers, and runs each kind of call it has on it.
func TestOperations(t *testing.T) {
	logTo(t)
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 3})
	c.CreateTableReplicas(t, "temp", 8, 3)
	tb := openTable(t, c, "temp")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	h := []byte("h")
	must("set", tb.Set(ctx, h, []byte("s1"), []byte("v1")))
	must("set ttl", tb.SetTTL(ctx, h, []byte("s2"), []byte("v2"), time.Hour))
	v, err := tb.Get(ctx, h, []byte("s1"))
	must("get", err)
	if string(v) != "v1" {
		t.Fatalf("get s1 = %q, want v1", v)
	}
	if v, err := tb.Get(ctx, h, []byte("none")); err != nil || v != nil {
		t.Fatalf("get of a missing key = %q, %v; want nil, nil", v, err)
	}
	ttl, err := tb.TTL(ctx, h, []byte("s2"))
	must("ttl", err)
	if ttl <= 0 || ttl > 3600 {
		t.Fatalf("ttl of s2 = %d, want (0, 3600]", ttl)
	}
	if ok, err := tb.Exist(ctx, h, []byte("s1")); err != nil || !ok {
		t.Fatalf("exist s1 = %v, %v", ok, err)
	}

	must("multi set", tb.MultiSet(ctx, h, [][]byte{[]byte("s3"), []byte("s4")}, [][]byte{[]byte("v3"), []byte("v4")}))
	kvs, all, err := tb.MultiGet(ctx, h, [][]byte{[]byte("s1"), []byte("s3"), []byte("s4"), []byte("none")})
	must("multi get", err)
	if got := kvString(kvs); !all || got != "s1=v1 s3=v3 s4=v4" {
		t.Fatalf("multi get = %q (all %v)", got, all)
	}
	kvs, _, err = tb.MultiGetRange(ctx, h, []byte("s2"), []byte("s4"))
	must("multi get range", err)
	if got := kvString(kvs); got != "s2=v2 s3=v3" {
		t.Fatalf("multi get range [s2, s4) = %q", got)
	}
	n, err := tb.SortKeyCount(ctx, h)
	must("sortkey count", err)
	if n != 4 {
		t.Fatalf("sortkey count = %d, want 4", n)
	}
	res, err := tb.CheckAndSet(ctx, h, []byte("s1"), pegasus.CheckTypeValueExist, nil, []byte("s5"), []byte("v5"),
		&pegasus.CheckAndSetOptions{ReturnCheckValue: true})
	must("check and set", err)
	if !res.SetSucceed || string(res.CheckValue) != "v1" {
		t.Fatalf("check and set: %+v", res)
	}

	sc, err := tb.GetScanner(ctx, h, nil, nil, pegasus.NewScanOptions())
	must("get scanner", err)
	if got := scanAll(t, ctx, sc); got != "h:s1=v1 h:s2=v2 h:s3=v3 h:s4=v4 h:s5=v5" {
		t.Fatalf("scan of h = %q", got)
	}

	// Hash keys spread over the partitions, read back by full scans.
	for i := range 20 {
		must("set", tb.Set(ctx, fmt.Appendf(nil, "k%02d", i), []byte("s"), fmt.Appendf(nil, "v%d", i)))
	}
	scanners, err := tb.GetUnorderedScanners(ctx, 4, pegasus.NewScanOptions())
	must("unordered scanners", err)
	rows := 0
	for _, sc := range scanners {
		got := scanAll(t, ctx, sc)
		if got != "" {
			rows += len(bytes.Fields([]byte(got)))
		}
	}
	if rows != 25 {
		t.Fatalf("full scan found %d rows, want 25", rows)
	}

	must("del", tb.Del(ctx, h, []byte("s1")))
	must("multi del", tb.MultiDel(ctx, h, [][]byte{[]byte("s3"), []byte("s4")}))
	kvs, _, err = tb.MultiGet(ctx, h, nil)
	must("multi get after deletes", err)
	if got := kvString(kvs); got != "s2=v2 s5=v5" {
		t.Fatalf("after deletes: %q", got)
	}
}

func kvString(kvs []*pegasus.KeyValue) string {
	var b bytes.Buffer
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", kv.SortKey, kv.Value)
	}
	return b.String()
}

// scanAll reads sc to its end and closes it.
func scanAll(t *testing.T, ctx context.Context, sc pegasus.Scanner) string {
	t.Helper()
	defer sc.Close()
	var b bytes.Buffer
	for {
		done, h, s, v, err := sc.Next(ctx)
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		if done {
			return b.String()
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s=%s", h, s, v)
	}
}
