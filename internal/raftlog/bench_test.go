package raftlog

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

const benchEntrySize = 1024

// BenchmarkAppend measures appends of 1 KiB entries by 1, 8 and 64 groups at once, each
// group waiting for the sync of its append before the next one (as a raft group whose
// every Ready carries new entries), against a raw file written the same way: one goroutine
// takes every request waiting, writes them with one write and fdatasyncs the file, then
// answers them. It reports appends/s, MB/s (of entry data) and appends per fsync.
//
//	go test -run XXX -bench Append -count 5 ./internal/raftlog/
//
// raw is the file; log is the raft log without the commit window (a round takes what is
// waiting, as raw does); log-window is the log with the servers' group commit options.
func BenchmarkAppend(b *testing.B) {
	for _, groups := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("groups=%d/raw", groups), func(b *testing.B) { benchRaw(b, groups) })
		b.Run(fmt.Sprintf("groups=%d/log", groups), func(b *testing.B) { benchLog(b, groups, Options{}) })
		b.Run(fmt.Sprintf("groups=%d/log-window", groups), func(b *testing.B) { benchLog(b, groups, DefaultOptions) })
	}
}

// runAppenders runs groups goroutines doing b.N appends in all with appendOne and reports
// the rates.
func runAppenders(b *testing.B, groups int, appendOne func(group int, index uint64) error, syncs func() int64) {
	b.SetBytes(benchEntrySize)
	b.ReportAllocs()
	var next atomic.Int64
	s0 := syncs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range groups {
		wg.Go(func() {
			for index := uint64(1); next.Add(1) <= int64(b.N); index++ {
				if err := appendOne(g, index); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	if n := syncs() - s0; n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "appends/fsync")
	}
}

func benchLog(b *testing.B, groups int, opts Options) {
	l, err := OpenOptions(b.TempDir(), slog.New(slog.DiscardHandler), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	data := make([]byte, benchEntrySize)
	gs := make([]Group, groups)
	for i := range gs {
		gs[i] = l.Group(idl.GPID{AppID: 1, PartitionIndex: int32(i)})
	}
	runAppenders(b, groups, func(g int, index uint64) error {
		if err := gs[g].Stage(raftpb.HardState{}, []raftpb.Entry{{Index: index, Term: 1, Data: data}}, index-1); err != nil {
			return err
		}
		return <-gs[g].Sync()
	}, l.Syncs)
}

// rawRequest is one append to the raw file: its bytes, and where the writer answers.
type rawRequest struct {
	data []byte
	done chan error
}

func benchRaw(b *testing.B, groups int) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	reqs := make(chan rawRequest, groups)
	var syncs atomic.Int64
	var writer sync.WaitGroup
	writer.Go(func() {
		var buf []byte
		var batch []rawRequest
		for r := range reqs {
			batch = append(batch[:0], r)
		more:
			for {
				select {
				case r, ok := <-reqs:
					if !ok {
						break more
					}
					batch = append(batch, r)
				default:
					break more
				}
			}
			buf = buf[:0]
			for _, r := range batch {
				// A length prefix, as a record has one.
				buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.data)))
				buf = append(buf, r.data...)
			}
			_, err := f.Write(buf)
			if err == nil {
				syncs.Add(1)
				err = fdatasync(f)
			}
			for _, r := range batch {
				r.done <- err
			}
		}
	})
	defer writer.Wait()
	defer close(reqs)
	data := make([]byte, benchEntrySize+entriesHeaderSize+recordHeaderSize) // a record's bytes
	dones := make([]chan error, groups)
	for i := range dones {
		dones[i] = make(chan error, 1)
	}
	runAppenders(b, groups, func(g int, _ uint64) error {
		reqs <- rawRequest{data: data, done: dones[g]}
		return <-dones[g]
	}, syncs.Load)
}
