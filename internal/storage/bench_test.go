package storage

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Each benchmark has a /store and a /pebble sub-benchmark doing the same work on the same
// keys and 1 KB values with the same Pebble options: the store through this package, the
// other straight on a Pebble database.

const (
	benchValueSize = 1024
	benchHashKeys  = 100
	benchSortKeys  = 100 // per hash key
)

var benchValue = func() []byte {
	v := make([]byte, benchValueSize)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}()

func benchPebbleOptions() *pebble.Options {
	return &pebble.Options{Logger: PebbleLogger(slog.New(slog.DiscardHandler))}
}

func benchKey(h, s int) (hashKey, sortKey []byte) {
	return fmt.Appendf(nil, "user%06d", h), fmt.Appendf(nil, "field%06d", s)
}

func openBenchStore(b *testing.B) *DB {
	db, err := Open(Options{Dir: b.TempDir(), SweepInterval: -1, Pebble: benchPebbleOptions()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

func openBenchPebble(b *testing.B) *pebble.DB {
	p, err := pebble.Open(b.TempDir(), benchPebbleOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// loadBench fills both databases with benchHashKeys x benchSortKeys records.
func loadBench(b *testing.B) (*DB, *pebble.DB) {
	db, p := openBenchStore(b), openBenchPebble(b)
	now := time.Now()
	for h := range benchHashKeys {
		kvs := make([]KeyValue, 0, benchSortKeys)
		pb := p.NewBatch()
		for s := range benchSortKeys {
			hk, sk := benchKey(h, s)
			kvs = append(kvs, KeyValue{Key: sk, Value: benchValue})
			_ = pb.Set(key.Encode(hk, sk), benchValue, nil)
		}
		hk, _ := benchKey(h, 0)
		if _, err := db.Apply(&Batch{Index: uint64(h + 1), Time: now,
			Mutations: []Mutation{{MultiPut: &MultiPutRequest{HashKey: hk, KVs: kvs}}}}); err != nil {
			b.Fatal(err)
		}
		if err := pb.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		_ = pb.Close()
	}
	return db, p
}

func BenchmarkPut(b *testing.B) {
	keys := make([][]byte, 1<<16)
	for i := range keys {
		hk, sk := benchKey(i%1000, i/1000)
		keys[i] = key.Encode(hk, sk)
	}
	b.Run("store", func(b *testing.B) {
		db := openBenchStore(b)
		now := time.Now()
		req := &PutRequest{Value: benchValue}
		batch := &Batch{Time: now, Mutations: []Mutation{{Put: req}}}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			req.Key = keys[i%len(keys)]
			i++
			batch.Index = uint64(i)
			if _, err := db.Apply(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pebble", func(b *testing.B) {
		p := openBenchPebble(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := p.Set(keys[i%len(keys)], benchValue, pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkGet(b *testing.B) {
	db, p := loadBench(b)
	keys := make([][]byte, benchHashKeys*benchSortKeys)
	for i := range keys {
		hk, sk := benchKey(i%benchHashKeys, i/benchHashKeys)
		keys[i] = key.Encode(hk, sk)
	}
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			v, code, err := db.Get(keys[i%len(keys)])
			if err != nil || code != wire.StatusOK || len(v) != benchValueSize {
				b.Fatal(code, err)
			}
			i++
		}
	})
	b.Run("pebble", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			v, closer, err := p.Get(keys[i%len(keys)])
			if err != nil {
				b.Fatal(err)
			}
			out := make([]byte, len(v))
			copy(out, v)
			_ = closer.Close()
			i++
		}
	})
}

// benchStoreMultiGet runs the store's MultiGet of req(hash key) over the hash keys in turn;
// each answer must hold all the hash key's sort keys.
func benchStoreMultiGet(b *testing.B, db *DB, req func(hashKey []byte) *MultiGetRequest) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		hk, _ := benchKey(i%benchHashKeys, 0)
		res, err := db.MultiGet(req(hk))
		if err != nil || res.Error != wire.StatusOK || len(res.KVs) != benchSortKeys {
			b.Fatal(res.Error, err)
		}
		i++
	}
}

// BenchmarkMultiGet reads 100 listed sort keys of one hash key (point mode).
func BenchmarkMultiGet(b *testing.B) {
	db, p := loadBench(b)
	sortKeys := make([][]byte, benchSortKeys)
	for s := range sortKeys {
		_, sortKeys[s] = benchKey(0, s)
	}
	b.Run("store", func(b *testing.B) {
		benchStoreMultiGet(b, db, func(hk []byte) *MultiGetRequest { return &MultiGetRequest{HashKey: hk, SortKeys: sortKeys} })
	})
	b.Run("pebble", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		var kb []byte
		for b.Loop() {
			hk, _ := benchKey(i%benchHashKeys, 0)
			kvs := make([]KeyValue, 0, 4)
			for _, sk := range sortKeys {
				kb = key.Append(kb[:0], hk, sk)
				v, closer, err := p.Get(kb)
				if err != nil {
					b.Fatal(err)
				}
				kvs = append(kvs, KeyValue{Key: append([]byte{}, sk...), Value: append([]byte{}, v...)})
				_ = closer.Close()
			}
			i++
		}
	})
}

// BenchmarkMultiGetRange reads all 100 sort keys of one hash key (range mode).
func BenchmarkMultiGetRange(b *testing.B) {
	db, p := loadBench(b)
	b.Run("store", func(b *testing.B) {
		benchStoreMultiGet(b, db, func(hk []byte) *MultiGetRequest { return &MultiGetRequest{HashKey: hk, StartInclusive: true} })
	})
	b.Run("pebble", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			hk, _ := benchKey(i%benchHashKeys, 0)
			it, err := p.NewIter(&pebble.IterOptions{LowerBound: key.Encode(hk, nil), UpperBound: key.HashKeyEnd(hk)})
			if err != nil {
				b.Fatal(err)
			}
			kvs := make([]KeyValue, 0, 4)
			for it.First(); it.Valid(); it.Next() {
				v, _ := it.ValueAndErr()
				kvs = append(kvs, KeyValue{Key: append([]byte{}, it.Key()[2+len(hk):]...), Value: append([]byte{}, v...)})
			}
			_ = it.Close()
			if len(kvs) != benchSortKeys {
				b.Fatal(len(kvs))
			}
			i++
		}
	})
}

// BenchmarkScan reads 1,000 records (ten hash keys) with one get_scanner call.
func BenchmarkScan(b *testing.B) {
	db, p := loadBench(b)
	bounds := func(i int) (start, stop []byte) {
		h := (i * 10) % (benchHashKeys - 10)
		hs, _ := benchKey(h, 0)
		he, _ := benchKey(h+10, 0)
		return key.Encode(hs, nil), key.Encode(he, nil)
	}
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			start, stop := bounds(i)
			res, err := db.GetScanner(&GetScannerRequest{StartKey: start, StopKey: stop, StartInclusive: true})
			if err != nil || res.Error != wire.StatusOK || len(res.KVs) != 1000 {
				b.Fatal(res.Error, len(res.KVs), err)
			}
			if res.ContextID > 0 {
				db.ClearScanner(res.ContextID)
			}
			i++
		}
	})
	b.Run("pebble", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			start, stop := bounds(i)
			it, err := p.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: stop})
			if err != nil {
				b.Fatal(err)
			}
			kvs := make([]KeyValue, 0, 4)
			for it.First(); it.Valid(); it.Next() {
				v, _ := it.ValueAndErr()
				kvs = append(kvs, KeyValue{Key: append([]byte{}, it.Key()...), Value: append([]byte{}, v...)})
			}
			_ = it.Close()
			if len(kvs) != 1000 {
				b.Fatal(len(kvs))
			}
			i++
		}
	})
}
