package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/prop"
	"github.com/pingcap/go-ycsb/pkg/ycsb"

	pegasus "github.com/gopegasus/pegasus"
)

// Properties of the gopegasus binding.
const (
	propPegasusMetas = "gopegasus.metas" // meta servers, comma separated
	propPegasusTable = "gopegasus.table" // table to use (it must exist); default "temp"
)

// errNotFound is what a read of a missing record returns, as the other bindings do.
var errNotFound = errors.New("gopegasus: record not found")

// pegasusCreator creates the gopegasus binding: a YCSB record is a hash key (the record key)
// whose fields are its sort keys, each holding the field's value.
type pegasusCreator struct{}

func (pegasusCreator) Create(p *properties.Properties) (ycsb.DB, error) {
	metas := strings.Split(p.GetString(propPegasusMetas, "127.0.0.1:34601"), ",")
	c, err := pegasus.New(pegasus.Config{MetaServers: metas})
	if err != nil {
		return nil, err
	}
	t, err := c.OpenTable(context.Background(), p.GetString(propPegasusTable, "temp"))
	if err != nil {
		c.Close()
		return nil, err
	}
	n := p.GetInt64(prop.FieldCount, prop.FieldCountDefault)
	fields := make([][]byte, n)
	for i := range fields {
		fields[i] = fmt.Appendf(nil, "field%d", i) // the core workload's field names
	}
	return &pegasusDB{client: c, table: t, fields: fields}, nil
}

type pegasusDB struct {
	client pegasus.Client
	table  pegasus.TableConnector
	fields [][]byte // every field name, for reads of all fields
}

func (db *pegasusDB) Close() error { return db.client.Close() }

func (db *pegasusDB) InitThread(ctx context.Context, _, _ int) context.Context { return ctx }

func (db *pegasusDB) CleanupThread(context.Context) {}

// expired waits, once ctx's deadline has passed, until ctx is done, and reports whether it
// had. Our client fails a call at once when no time is left, but the context's timer may
// close Done a few milliseconds later on a busy machine; go-ycsb's workers stop only on
// Done, so without this wait each would fail hundreds of calls at the end of a run.
func expired(ctx context.Context) bool {
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		<-ctx.Done()
		return true
	}
	return ctx.Err() != nil
}

func (db *pegasusDB) Read(ctx context.Context, _ string, key string, fields []string) (map[string][]byte, error) {
	if expired(ctx) {
		return nil, ctx.Err()
	}
	names := db.fields
	if len(fields) > 0 {
		names = make([][]byte, len(fields))
		for i, f := range fields {
			names[i] = []byte(f)
		}
	}
	if len(names) == 1 {
		v, err := db.table.Get(ctx, []byte(key), names[0])
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, errNotFound
		}
		return map[string][]byte{string(names[0]): v}, nil
	}
	kvs, _, err := db.table.MultiGet(ctx, []byte(key), names)
	if err != nil {
		return nil, err
	}
	if len(kvs) == 0 {
		return nil, errNotFound
	}
	out := make(map[string][]byte, len(kvs))
	for _, kv := range kvs {
		out[string(kv.SortKey)] = kv.Value
	}
	return out, nil
}

// Scan is not offered: records are spread over partitions by the hash of their key, so
// there is no order across record keys to scan in.
func (db *pegasusDB) Scan(context.Context, string, string, int, []string) ([]map[string][]byte, error) {
	return nil, errors.New("gopegasus: scans across record keys are not supported")
}

func (db *pegasusDB) Update(ctx context.Context, _ string, key string, values map[string][]byte) error {
	if expired(ctx) {
		return ctx.Err()
	}
	if len(values) == 1 {
		for f, v := range values {
			return db.table.Set(ctx, []byte(key), []byte(f), v)
		}
	}
	sorts := make([][]byte, 0, len(values))
	vals := make([][]byte, 0, len(values))
	for f, v := range values {
		sorts, vals = append(sorts, []byte(f)), append(vals, v)
	}
	return db.table.MultiSet(ctx, []byte(key), sorts, vals)
}

func (db *pegasusDB) Insert(ctx context.Context, table string, key string, values map[string][]byte) error {
	return db.Update(ctx, table, key, values)
}

func (db *pegasusDB) Delete(ctx context.Context, _ string, key string) error {
	return db.table.MultiDel(ctx, []byte(key), db.fields)
}

func init() {
	ycsb.RegisterDBCreator("gopegasus", pegasusCreator{})
}
