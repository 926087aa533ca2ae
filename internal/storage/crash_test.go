package storage

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

const crashChildEnv = "STORAGE_CRASH_CHILD_DIR"

// crashBatch is batch i of the crash workload: a put of k<i>, a three-key multi_put and an
// incr of a counter, so a reopened store can check it holds exactly batches 1..N.
func crashBatch(i uint64) *Batch {
	v := []byte(strconv.FormatUint(i, 10))
	return &Batch{Index: i, Time: time.Unix(EpochUnix+1000, 0), Mutations: []Mutation{
		{Put: &PutRequest{Key: key.Encode([]byte("k"), v), Value: v}},
		{MultiPut: &MultiPutRequest{HashKey: []byte("m"), KVs: []KeyValue{
			{Key: []byte("a"), Value: v}, {Key: []byte("b"), Value: v}, {Key: []byte("c"), Value: v}}}},
		{Incr: &IncrRequest{Key: key.Encode([]byte("counter"), nil), Increment: 1}},
	}}
}

// TestCrashChild is the child process of TestCrashConsistency; it does nothing otherwise.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashConsistency")
	}
	noWAL := os.Getenv(crashChildEnv+"_NOWAL") != ""
	db, err := Open(Options{Dir: dir, SweepInterval: -1, SyncWrites: os.Getenv(crashChildEnv+"_SYNC") != "", NoWAL: noWAL})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := db.LastAppliedIndex() + 1; ; i++ {
		if _, err := db.Apply(crashBatch(i)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if i%50 == 0 {
			if noWAL {
				// What the replica does before truncating its raft log.
				if err := db.SyncApplied(); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
			}
			fmt.Println("applied", i)
		}
	}
}

func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		// With synced writes everything reported must survive; without, the tail of the WAL
		// still in Pebble's buffer is lost, but what survives must be a prefix of batches.
		// Without a WAL (rounds 3 and 4), everything up to the last SyncApplied survives
		// (the child reports after it), and again only a prefix of batches.
		sync := round == 0 || round == 2 || round >= 3
		switch {
		case round >= 3:
			cmd.Env = append(cmd.Env, crashChildEnv+"_NOWAL=1")
		case sync:
			cmd.Env = append(cmd.Env, crashChildEnv+"_SYNC=1")
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill the child at a different point each round, after it reported progress.
		target := 100 * (round + 2)
		sc := bufio.NewScanner(out)
		seen, reported := 0, uint64(0)
		for sc.Scan() {
			var n uint64
			if _, err := fmt.Sscanf(sc.Text(), "applied %d", &n); err == nil {
				seen++
				reported = n
				if seen*50 >= target {
					break
				}
			} else if len(sc.Text()) > 5 && sc.Text()[:5] == "error" {
				t.Fatalf("child: %s", sc.Text())
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if seen == 0 {
			t.Fatal("child made no progress")
		}
		n := checkCrashState(t, dir)
		if sync && n < reported {
			t.Fatalf("round %d: child reported index %d as durable, reopened at %d", round, reported, n)
		}
	}
}

// checkCrashState reopens dir and checks the data holds exactly batches 1..LastAppliedIndex.
func checkCrashState(t *testing.T, dir string) uint64 {
	t.Helper()
	db, err := Open(Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	n := db.LastAppliedIndex()
	want := strconv.FormatUint(n, 10)
	v, c, _ := db.Get(key.Encode([]byte("counter"), nil))
	if n == 0 && c != wire.StatusNotFound {
		t.Fatalf("applied index 0 but counter %q", v) // nothing survived: no data either
	}
	if n > 0 && (c != wire.StatusOK || string(v) != want) {
		t.Fatalf("applied index %d but counter %q (%d)", n, v, c)
	}
	for _, s := range []string{"a", "b", "c"} {
		if n == 0 {
			break
		}
		if v, _, _ := db.Get(key.Encode([]byte("m"), []byte(s))); string(v) != want {
			t.Fatalf("applied index %d but m/%s = %q", n, s, v)
		}
	}
	if cnt, _, _ := db.SortKeyCount([]byte("k")); cnt != int64(n) {
		t.Fatalf("applied index %d but %d k records", n, cnt)
	}
	if _, c, _ := db.Get(key.Encode([]byte("k"), []byte(strconv.FormatUint(n+1, 10)))); c != wire.StatusNotFound {
		t.Fatalf("batch %d visible beyond applied index", n+1)
	}
	t.Logf("reopened at index %d, consistent", n)
	return n
}
