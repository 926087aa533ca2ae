package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pegasus "github.com/gopegasus/pegasus"
)

// progress prints, every second until stopped, how many records a long command has done.
type progress struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func (sh *shell) startProgress(what string, n *atomic.Int64) *progress {
	p := &progress{stop: make(chan struct{})}
	start := time.Now()
	p.wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				done := n.Load()
				fmt.Fprintf(sh.stderr, "%s: %d records, %.0f records/s, %s\n",
					what, done, float64(done)/now.Sub(start).Seconds(), now.Sub(start).Round(time.Second))
			}
		}
	})
	return p
}

func (p *progress) end() {
	close(p.stop)
	p.wg.Wait()
}

// eachScanner runs fn on every scanner in its own goroutine and returns the first error;
// the others are canceled then. Every scanner is closed.
func eachScanner(ctx context.Context, scanners []pegasus.Scanner, fn func(ctx context.Context, s pegasus.Scanner) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		once sync.Once
		ferr error
	)
	for _, s := range scanners {
		wg.Go(func() {
			defer s.Close()
			if err := fn(ctx, s); err != nil {
				once.Do(func() { ferr = err; cancel() })
			}
		})
	}
	wg.Wait()
	return ferr
}

func (sh *shell) cmdCountData(ctx context.Context, args []string) error {
	o, err := parseOpts(args, append([]optSpec{{"b", "max_batch_count", true}, {"d", "diff_hash_key", false}, {"a", "stat_size", false}}, filterSpecs...))
	if err != nil {
		return err
	}
	if len(o.pos) != 0 {
		return usageErr("count_data [options]; \"help count_data\" lists them")
	}
	st, err := sh.scanSettings(o)
	if err != nil {
		return err
	}
	statSize := o.has("stat_size")
	st.opts.NoValue = !statSize && st.value.Type == pegasus.FilterTypeNoFilter
	scanners, err := sh.allScanners(ctx, st.opts)
	if err != nil {
		return err
	}
	var rows, hashKeys, keyBytes, valueBytes atomic.Int64
	start := time.Now()
	p := sh.startProgress("count_data", &rows)
	err = eachScanner(ctx, scanners, func(ctx context.Context, s pegasus.Scanner) error {
		var last []byte
		for {
			done, h, k, v, err := s.Next(ctx)
			if err != nil || done {
				return err
			}
			if !matches(st.value, v) {
				continue
			}
			rows.Add(1)
			// Records of one hash key are adjacent within a partition, and a hash key lives
			// in one partition, so counting changes counts distinct hash keys.
			if last == nil || !bytes.Equal(h, last) {
				hashKeys.Add(1)
				last = h
			}
			keyBytes.Add(int64(len(h) + len(k)))
			valueBytes.Add(int64(len(v)))
		}
	})
	p.end()
	if err != nil {
		return fmt.Errorf("after %d records: %w", rows.Load(), err)
	}
	fields := []field{{"table", sh.table}, {"row_count", rows.Load()}}
	if o.has("diff_hash_key") {
		fields = append(fields, field{"hash_key_count", hashKeys.Load()})
	}
	if statSize {
		fields = append(fields, field{"key_bytes", keyBytes.Load()}, field{"value_bytes", valueBytes.Load()})
	}
	fields = append(fields, field{"seconds", time.Since(start).Round(time.Millisecond).Seconds()})
	sh.out.object(fields)
	return nil
}

func (sh *shell) cmdCopyData(ctx context.Context, args []string) error {
	o, err := parseOpts(args, append([]optSpec{{"a", "target_app_name", true}, {"c", "target_cluster_name", true},
		{"b", "max_batch_count", true}, {"e", "no_ttl", false}}, filterSpecs...))
	if err != nil {
		return err
	}
	target := o.str("target_app_name", "")
	if len(o.pos) != 0 || target == "" {
		return usageErr("copy_data -a TARGET_TABLE [-c TARGET_METAS] [options]; \"help copy_data\" lists them")
	}
	st, err := sh.scanSettings(o)
	if err != nil {
		return err
	}
	st.opts.NoValue = false
	cl := sh.client
	if metas := o.str("target_cluster_name", ""); metas != "" {
		c, err := pegasus.New(pegasus.Config{MetaServers: splitList(metas)})
		if err != nil {
			return fmt.Errorf("-c: %w", err)
		}
		defer c.Close()
		cl = c
	} else if target == sh.table {
		return errors.New("the target table is the table in use")
	}
	octx, cancel := sh.opCtx(ctx)
	dst, err := cl.OpenTable(octx, target)
	cancel()
	if err != nil {
		return fmt.Errorf("target table: %w", err)
	}
	scanners, err := sh.allScanners(ctx, st.opts)
	if err != nil {
		return err
	}
	keepTTL := !o.has("no_ttl")
	var copied atomic.Int64
	start := time.Now()
	p := sh.startProgress("copy_data", &copied)
	err = eachScanner(ctx, scanners, func(ctx context.Context, s pegasus.Scanner) error {
		for {
			done, h, k, v, err := s.Next(ctx)
			if err != nil || done {
				return err
			}
			if !matches(st.value, v) {
				continue
			}
			var ttl time.Duration
			if keepTTL {
				secs, err := sh.tbl.TTL(ctx, h, k)
				if err != nil {
					return err
				}
				if secs == -2 { // expired or deleted since the scan read it
					continue
				}
				if secs > 0 {
					ttl = time.Duration(secs) * time.Second
				}
			}
			if err := dst.SetTTL(ctx, h, k, v, ttl); err != nil {
				return err
			}
			copied.Add(1)
		}
	})
	p.end()
	if err != nil {
		return fmt.Errorf("after copying %d records: %w", copied.Load(), err)
	}
	sh.out.object([]field{{"source", sh.table}, {"target", target}, {"copied", copied.Load()},
		{"seconds", time.Since(start).Round(time.Millisecond).Seconds()}})
	return nil
}
