package raftlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// The crash tests' child process: TestCrashKillMidWrite runs the test binary again with
// these set, and the child writes until it is killed.
const (
	crashDirEnv        = "RAFTLOG_CRASH_CHILD_DIR"
	crashDurabilityEnv = "RAFTLOG_CRASH_CHILD_DURABILITY"
)

const crashGroups = 4

// crashSegmentSize is small, so that the kills land in every part of a segment's life:
// rotation, the seal, a new segment's header.
const crashSegmentSize = 256 << 10

func crashPID(i int) idl.GPID { return idl.GPID{AppID: 3, PartitionIndex: int32(i)} }

// crashChild writes entries of several groups, each append synced, and prints "ack group
// index" once an append is acknowledged, until it is killed. Some entries are large, so a
// kill often lands inside a write. It goes on from what the log holds.
func crashChild(dir string, d Durability) {
	l, err := OpenOptions(dir, slog.New(slog.DiscardHandler), Options{Durability: d, SegmentSize: crashSegmentSize, SyncInterval: 5e6})
	if err != nil {
		fmt.Printf("open: %v\n", err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for i := range crashGroups {
		wg.Go(func() {
			pid := crashPID(i)
			g := l.Group(pid)
			ms, _, err := g.Load()
			if err != nil {
				fmt.Printf("load: %v\n", err)
				os.Exit(2)
			}
			next, _ := ms.LastIndex()
			next++
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(i)))
			for {
				var ents []raftpb.Entry
				for k := range 1 + rng.IntN(4) {
					size := rng.IntN(2000)
					if rng.IntN(8) == 0 {
						size = 64<<10 + rng.IntN(128<<10)
					}
					idx := next + uint64(k)
					ents = append(ents, raftpb.Entry{Index: idx, Term: 1, Data: entryData(pid, idx, 1, size)})
				}
				last := ents[len(ents)-1].Index
				if err := g.Save(raftpb.HardState{Term: 1, Commit: last}, ents); err != nil {
					fmt.Printf("save: %v\n", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Printf("ack %d %d\n", i, last)
				out.Unlock()
				next = last + 1
				if rng.IntN(20) == 0 && last > 10 {
					// Truncate now and then, so segments are dropped and compacted.
					if err := g.Truncate(last-5, 1, raftpb.ConfState{Voters: []uint64{1}}); err != nil {
						fmt.Printf("truncate: %v\n", err)
						os.Exit(2)
					}
				}
			}
		})
	}
	wg.Wait()
}

// A child process writing and acknowledging appends of several groups is SIGKILLed, at a
// random moment, again and again; after each kill the log is opened: every acknowledged
// append is there, and every entry the log holds is intact (its data is a function of its
// group, index and term), with no gap: the log stopped cleanly at whatever the kill tore.
// With DurabilityOS too: a process kill loses nothing the OS was given.
func TestCrashKillMidWrite(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		d, _ := ParseDurability(os.Getenv(crashDurabilityEnv))
		crashChild(dir, d)
		return
	}
	for _, d := range []Durability{DurabilityAlways, DurabilityOS} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			kills := 8
			if testing.Short() {
				kills = 3
			}
			acked := make([]uint64, crashGroups)
			for k := range kills {
				runAndKill(t, dir, d, acked, 20+rand.IntN(200))
				checkCrashLog(t, dir, acked, fmt.Sprintf("after kill %d", k+1))
			}
		})
	}
}

// runAndKill runs the child until it acknowledged n appends, kills it, and records the
// highest acknowledged index of each group in acked.
func runAndKill(t *testing.T, dir string, d Durability, acked []uint64, n int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKillMidWrite$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashDurabilityEnv+"="+d.String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	seen := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child: %s", sc.Text())
		}
		g, _ := strconv.Atoi(f[1])
		idx, _ := strconv.ParseUint(f[2], 10, 64)
		acked[g] = max(acked[g], idx)
		if seen++; seen == n {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed", err)
	}
}

// checkCrashLog opens the log in dir and checks every group holds at least its
// acknowledged entries, intact and without gaps.
func checkCrashLog(t *testing.T, dir string, acked []uint64, when string) {
	t.Helper()
	l, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatalf("%s: open: %v", when, err)
	}
	defer l.Close()
	for i := range crashGroups {
		pid := crashPID(i)
		ms, _, err := l.Group(pid).Load()
		if err != nil {
			t.Fatalf("%s: load %v: %v", when, pid, err)
		}
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		if last < acked[i] {
			t.Fatalf("%s: %v holds entries up to %d, but %d was acknowledged", when, pid, last, acked[i])
		}
		if last < first {
			continue
		}
		ents, err := ms.Entries(first, last+1, 1<<62)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if want := entryData(pid, e.Index, e.Term, len(e.Data)); !bytes.Equal(e.Data, want) {
				t.Fatalf("%s: %v entry %d holds %q..., want %q...", when, pid, e.Index, e.Data[:min(len(e.Data), 40)], want[:min(len(want), 40)])
			}
		}
	}
}

// writeOneGroup writes n appends of group pid, one entry each (one record) and synced, to a log in dir
// with segments of segSize, closes it and returns where each append's records ended in
// its segment (ends[i] for entry i+1) and the segment.
func writeOneGroup(t *testing.T, dir string, pid idl.GPID, n int, segSize int64) (ends []int64, segs []uint64) {
	t.Helper()
	l, err := OpenOptions(dir, testLogger(t), Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	g := l.Group(pid)
	for i := uint64(1); i <= uint64(n); i++ {
		if err := g.Save(raftpb.HardState{}, []raftpb.Entry{{Index: i, Term: 1, Data: entryData(pid, i, 1, 100+int(i)%50)}}); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		act := l.activeLocked()
		ends, segs = append(ends, act.size), append(segs, act.seq)
		l.mu.Unlock()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return ends, segs
}

// copyDir copies the log files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// lastEntry opens the log in dir and returns the last index of pid.
func lastEntry(t *testing.T, dir string, pid idl.GPID) (uint64, error) {
	t.Helper()
	l, err := Open(dir, testLogger(t))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	ms, _, err := l.Group(pid).Load()
	if err != nil {
		t.Fatal(err)
	}
	last, _ := ms.LastIndex()
	return last, nil
}

// A last segment cut anywhere (a crash before the end of a write reached the disk) opens
// with exactly the appends whose records lie wholly before the cut.
func TestTruncatedLastSegment(t *testing.T) {
	pid := idl.GPID{AppID: 1, PartitionIndex: 1}
	src := t.TempDir()
	const n = 40
	ends, _ := writeOneGroup(t, src, pid, n, 1<<30)
	seg := filepath.Join(src, segmentName(1))
	// Every cut through the last few appends, and a sample of the earlier ones.
	var cuts []int64
	for off := ends[n-4]; off <= ends[n-1]+recordHeaderSize; off++ {
		cuts = append(cuts, off)
	}
	for range 50 {
		cuts = append(cuts, segHeaderSize+rand.Int64N(ends[n-1]-segHeaderSize))
	}
	for _, cut := range cuts {
		dir := copyDir(t, src)
		if err := os.Truncate(filepath.Join(dir, filepath.Base(seg)), cut); err != nil {
			t.Fatal(err)
		}
		want := uint64(0)
		for i, end := range ends {
			if end <= cut {
				want = uint64(i + 1)
			}
		}
		got, err := lastEntry(t, dir, pid)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if got != want {
			t.Fatalf("cut at %d: last entry %d, want %d", cut, got, want)
		}
		// Reopening again changes nothing: the cut tail was removed and the segment sealed.
		if again, err := lastEntry(t, dir, pid); err != nil || again != want {
			t.Fatalf("cut at %d, second open: last entry %d, %v; want %d", cut, again, err, want)
		}
	}
}

// flipByte flips one bit of the byte at off of file name.
func flipByte(t *testing.T, name string, off int64) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A flipped byte: in a segment before the last, opening fails with ErrCorrupt (acknowledged
// records are never silently dropped from the middle of the log); in the last segment, the
// log stops at the record holding it, in the middle of the segment or at its tail.
func TestFlippedByte(t *testing.T) {
	pid := idl.GPID{AppID: 1, PartitionIndex: 1}
	src := t.TempDir()
	const n = 60
	ends, segs := writeOneGroup(t, src, pid, n, 4<<10)
	if segs[n-1] < 3 {
		t.Fatalf("appends span segments %d..%d, want at least 3", segs[0], segs[n-1])
	}
	lastSeg := segs[n-1]
	// The appends in the last segment, and where their records start.
	var inLast []int
	for i := range n {
		if segs[i] == lastSeg {
			inLast = append(inLast, i)
		}
	}
	startOf := func(i int) int64 {
		if i > 0 && segs[i-1] == segs[i] {
			return ends[i-1]
		}
		return segHeaderSize
	}
	cases := []struct {
		name    string
		seg     uint64
		off     int64
		want    uint64 // last entry after opening; 0 with corrupt set
		corrupt bool
	}{
		{"first segment, a record", segs[0], startOf(1) + 20, 0, true},
		{"middle segment, header", lastSeg - 1, 3, 0, true},
		{"middle segment, a record's checksum", lastSeg - 1, segHeaderSize + 1, 0, true},
		{"last segment, middle record", lastSeg, startOf(inLast[len(inLast)/2]) + recordHeaderSize + 2, uint64(inLast[len(inLast)/2]), false},
		{"last segment, tail record", lastSeg, ends[n-1] - 3, uint64(n - 1), false},
		{"last segment, first record's length", lastSeg, startOf(inLast[0]) + 5, uint64(inLast[0]), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			flipByte(t, filepath.Join(dir, segmentName(tc.seg)), tc.off)
			got, err := lastEntry(t, dir, pid)
			if tc.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("open: %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if got != tc.want {
				t.Fatalf("last entry %d, want %d", got, tc.want)
			}
		})
	}
}
