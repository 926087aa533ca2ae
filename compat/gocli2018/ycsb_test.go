package gocli2018

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/XiaoMi/pegasus-go-client/pegasus"
	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/client"
	"github.com/pingcap/go-ycsb/pkg/measurement"
	"github.com/pingcap/go-ycsb/pkg/ycsb"

	_ "github.com/gopegasus/pegasus/compat/gocli2018/ycsb/pegasus" // go-ycsb's "pegasus" binding, fixed
	_ "github.com/pingcap/go-ycsb/pkg/workload"

	"github.com/gopegasus/pegasus/internal/testcluster"
)

// TestYCSB loads a table with go-ycsb v1.0.1's pegasus binding on the 2018 client (bench/compare
// runs the same binding against the onebox) and runs workloads A and C for a few seconds each.
// No call may fail, except those in flight when a run is stopped.
func TestYCSB(t *testing.T) {
	logTo(t)
	const records, threads = 2000, 8
	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
	c.CreateTableReplicas(t, "temp", 8, 3)
	// The 2018 client does not retry a write refused by a replica that stopped being the
	// primary; let the primaries settle first.
	c.WaitSpreadPrimaries(t, "temp")
	base := map[string]string{
		"workload": "core", "table": "temp", "meta_servers": c.MetaAddrs()[0],
		"recordcount": strconv.Itoa(records), "fieldcount": "1", "fieldlength": "100",
		"readallfields": "true", "requestdistribution": "zipfian", "threadcount": strconv.Itoa(threads),
		"measurementtype": "histogram", "measurement.interval": "60", "silence": "true",
		"measurement.output_file": filepath.Join(t.TempDir(), "measurements"),
	}

	load := runYCSB(t, base, nil, 0)
	if load.errs.Load() != 0 || load.late.Load() != 0 || load.inserts.Load() != records {
		t.Fatalf("load: %d inserts, %d errors, %d failed at the end (first: %v); want %d inserts and no errors",
			load.inserts.Load(), load.errs.Load(), load.late.Load(), load.firstErr(), records)
	}
	if n := countRecords(t, c); n != records {
		t.Fatalf("after the load the table holds %d records, want %d", n, records)
	}

	for _, w := range []struct {
		name  string
		props map[string]string
	}{
		{"A", map[string]string{"readproportion": "0.5", "updateproportion": "0.5"}},
		{"C", map[string]string{"readproportion": "1", "updateproportion": "0"}},
	} {
		t.Run(w.name, func(t *testing.T) {
			r := runYCSB(t, base, w.props, 3*time.Second)
			t.Logf("workload %s: %d reads, %d updates, %d calls in flight at the end failed",
				w.name, r.reads.Load(), r.updates.Load(), r.late.Load())
			if r.errs.Load() != 0 {
				t.Fatalf("workload %s: %d calls failed (first: %v)", w.name, r.errs.Load(), r.firstErr())
			}
			if r.late.Load() > threads {
				t.Fatalf("workload %s: %d calls failed at the end, more than one per thread", w.name, r.late.Load())
			}
			if r.reads.Load() == 0 || (w.name == "A") != (r.updates.Load() > 0) {
				t.Fatalf("workload %s: %d reads, %d updates", w.name, r.reads.Load(), r.updates.Load())
			}
		})
	}
}

// runYCSB runs go-ycsb's client with the pegasus binding: the load phase when d is 0, else
// the workload in props for d. A run is stopped by cancelling its context, as bench/compare
// does, so its calls see no deadline pass before they are cancelled.
func runYCSB(t *testing.T, base, props map[string]string, d time.Duration) *countingDB {
	t.Helper()
	p := properties.NewProperties()
	for k, v := range base {
		p.Set(k, v)
	}
	p.Set("dotransactions", strconv.FormatBool(d > 0))
	if d > 0 {
		p.Set("operationcount", strconv.FormatInt(1<<40, 10))
	}
	for k, v := range props {
		p.Set(k, v)
	}
	measurement.InitMeasure(p)
	wl, err := ycsb.GetWorkloadCreator("core").Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Close()
	db, err := ycsb.GetDBCreator("pegasus").Create(p)
	if err != nil {
		t.Fatalf("pegasus binding: %v", err)
	}
	defer db.Close()
	cdb := &countingDB{DB: db}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if d > 0 {
		stop := time.AfterFunc(d, cancel)
		defer stop.Stop()
	}
	client.NewClient(p, wl, client.DbWrapper{DB: cdb}).Run(ctx)
	return cdb
}

// countingDB counts the calls of a binding and their failures: a call that fails once its
// context is done was in flight when the run was stopped (late); any other failure is an
// error.
type countingDB struct {
	ycsb.DB
	reads, updates, inserts, errs, late atomic.Int64

	mu    sync.Mutex
	first error
}

func (d *countingDB) count(ctx context.Context, n *atomic.Int64, err error) error {
	switch {
	case err == nil:
		n.Add(1)
	case ctx.Err() != nil:
		d.late.Add(1)
	default:
		d.errs.Add(1)
		d.mu.Lock()
		if d.first == nil {
			d.first = err
		}
		d.mu.Unlock()
	}
	return err
}

func (d *countingDB) firstErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first
}

func (d *countingDB) Read(ctx context.Context, table, key string, fields []string) (map[string][]byte, error) {
	v, err := d.DB.Read(ctx, table, key, fields)
	return v, d.count(ctx, &d.reads, err)
}

func (d *countingDB) Update(ctx context.Context, table, key string, values map[string][]byte) error {
	return d.count(ctx, &d.updates, d.DB.Update(ctx, table, key, values))
}

func (d *countingDB) Insert(ctx context.Context, table, key string, values map[string][]byte) error {
	return d.count(ctx, &d.inserts, d.DB.Insert(ctx, table, key, values))
}

func (d *countingDB) Scan(context.Context, string, string, int, []string) ([]map[string][]byte, error) {
	return nil, errors.New("countingDB: workloads A and C do not scan")
}

func (d *countingDB) Delete(context.Context, string, string) error {
	return errors.New("countingDB: workloads A and C do not delete")
}

// countRecords counts the table's records as the binding stores them (the record's fields as
// JSON under the empty sort key) with a full scan by the 2018 client.
func countRecords(t *testing.T, c *testcluster.Cluster) int {
	t.Helper()
	tb := openTable(t, c, "temp")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	scanners, err := tb.GetUnorderedScanners(ctx, 8, pegasus.NewScanOptions())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sc := range scanners {
		for {
			done, _, s, v, err := sc.Next(ctx)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if done {
				break
			}
			var fields map[string][]byte
			if len(s) != 0 || json.Unmarshal(v, &fields) != nil || len(fields["field0"]) != 100 {
				t.Fatalf("record with sort key %q and value %q", s, v)
			}
			n++
		}
		sc.Close()
	}
	return n
}
