// Command example walks through the client API against a local onebox cluster
// (meta server 127.0.0.1:34601, table "temp"): `pegasus onebox`, then `go run ./example`.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/gopegasus/pegasus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// The configuration can also come from JSON, e.g. a file holding
	// {"meta_servers": ["127.0.0.1:34601"]}.
	cfg := &pegasus.Config{}
	if err := json.Unmarshal([]byte(`{"meta_servers": ["127.0.0.1:34601"]}`), cfg); err != nil {
		return err
	}
	c := pegasus.NewClient(*cfg)
	defer c.Close()

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tb, err := c.OpenTable(ctx, "temp")
	if err != nil {
		return err
	}
	h := []byte("example")

	// Single records.
	if err := tb.Set(ctx, h, []byte("s1"), []byte("v1")); err != nil {
		return err
	}
	if err := tb.SetTTL(ctx, h, []byte("s2"), []byte("v2"), time.Minute); err != nil {
		return err
	}
	v, err := tb.Get(ctx, h, []byte("s1"))
	if err != nil {
		return err
	}
	fmt.Printf("get s1: %q\n", v)
	ttl, err := tb.TTL(ctx, h, []byte("s2"))
	if err != nil {
		return err
	}
	fmt.Printf("ttl s2: %d s\n", ttl)
	ok, err := tb.Exist(ctx, h, []byte("nope"))
	if err != nil {
		return err
	}
	fmt.Printf("exist nope: %v\n", ok)

	// Several sort keys of one hash key.
	if err := tb.MultiSet(ctx, h, [][]byte{[]byte("s3"), []byte("s4")}, [][]byte{[]byte("v3"), []byte("v4")}); err != nil {
		return err
	}
	kvs, all, err := tb.MultiGet(ctx, h, nil)
	if err != nil {
		return err
	}
	fmt.Printf("multi get: %d records, all fetched %v\n", len(kvs), all)
	kvs, _, err = tb.MultiGetRangeOpt(ctx, h, []byte("s2"), []byte("s4"), &pegasus.MultiGetOptions{
		StartInclusive: true, StopInclusive: true, MaxFetchCount: 10, NoValue: true,
	})
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		fmt.Printf("  range key %s\n", kv.SortKey)
	}
	n, err := tb.SortKeyCount(ctx, h)
	if err != nil {
		return err
	}
	fmt.Printf("sort key count: %d\n", n)

	// Atomic operations.
	counter, err := tb.Incr(ctx, h, []byte("counter"), 1)
	if err != nil {
		return err
	}
	fmt.Printf("counter: %d\n", counter)
	res, err := tb.CheckAndSet(ctx, h, []byte("s1"), pegasus.CheckTypeBytesEqual, []byte("v1"),
		[]byte("s1"), []byte("v1-new"), &pegasus.CheckAndSetOptions{ReturnCheckValue: true})
	if err != nil {
		return err
	}
	fmt.Printf("check and set: succeeded %v, old value %q\n", res.SetSucceed, res.CheckValue)

	values, err := tb.BatchGet(ctx, []pegasus.CompositeKey{{HashKey: h, SortKey: []byte("s1")}, {HashKey: h, SortKey: []byte("s3")}})
	if err != nil {
		return err
	}
	fmt.Printf("batch get: %q\n", values)

	// Scans: one hash key in order, then the whole table.
	sc, err := tb.GetScanner(ctx, h, nil, nil, pegasus.NewScanOptions())
	if err != nil {
		return err
	}
	for {
		done, _, sk, v, err := sc.Next(ctx)
		if err != nil {
			sc.Close()
			return err
		}
		if done {
			break
		}
		fmt.Printf("  scan %s = %q\n", sk, v)
	}
	sc.Close()
	scanners, err := tb.GetUnorderedScanners(ctx, 4, pegasus.NewScanOptions())
	if err != nil {
		return err
	}
	total := 0
	for _, s := range scanners {
		for {
			done, _, _, _, err := s.Next(ctx)
			if err != nil {
				s.Close()
				return err
			}
			if done {
				break
			}
			total++
		}
		s.Close()
	}
	fmt.Printf("full scan: %d records in %d scanners\n", total, len(scanners))

	// Deletion.
	if err := tb.MultiDel(ctx, h, [][]byte{[]byte("s3"), []byte("s4")}); err != nil {
		return err
	}
	if err := tb.Del(ctx, h, []byte("counter")); err != nil {
		return err
	}
	return tb.DelRange(ctx, h, nil, nil)
}
