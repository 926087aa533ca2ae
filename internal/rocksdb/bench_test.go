package rocksdb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeLargeSST has RocksDB write n records of Pegasus shape (encoded keys, values with
// the v1 header, half of each value random) as one external SST with db's options.
func writeLargeSST(b *testing.B, tl tools, db string, n, valueLen int) (path string, logical int64) {
	b.Helper()
	path = filepath.Join(b.TempDir(), "large.sst")
	cmd := exec.Command(tl.ldb, "--db="+db, "--hex", "--try_load_options", "write_extern_sst", path)
	stdin, err := cmd.StdinPipe()
	must(b, err)
	cmd.Stderr = os.Stderr // stdout only says where the file went
	must(b, cmd.Start())
	w := bufio.NewWriterSize(stdin, 1<<20)
	r := rand.New(rand.NewPCG(11, 12))
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	v := make([]byte, valueLen)
	for i := 0; i < n; i++ {
		hash := fmt.Sprintf("user%010d", i/4)
		k := binary.BigEndian.AppendUint16(nil, uint16(len(hash)))
		k = append(append(k, hash...), fmt.Sprintf("field%02d", i%4)...)
		binary.BigEndian.PutUint32(v, 0)
		binary.BigEndian.PutUint64(v[4:], uint64(i)<<8|1<<1)
		for j := 12; j < len(v); j++ {
			if j < 12+(len(v)-12)/2 {
				v[j] = letters[r.IntN(len(letters))]
			} else {
				v[j] = letters[(i+j)%len(letters)]
			}
		}
		fmt.Fprintf(w, "0x%X ==> 0x%X\n", k, v)
		logical += int64(len(k) + len(v))
	}
	must(b, w.Flush())
	must(b, stdin.Close())
	must(b, cmd.Wait())
	return path, logical
}

// BenchmarkMergedScan is a full merged scan of one RocksDB-written SST of 1,000,000
// records (about 200 MB of keys and values): file MB/s, logical (key and value) MB/s and
// records/s.
func BenchmarkMergedScan(b *testing.B) {
	tl := needTools(b)
	for _, c := range []struct{ name, compression string }{
		{"snappy", "kSnappyCompression"},
		{"lz4", "kLZ4Compression"},
		{"zstd", "kZSTD"},
		{"none", "kNoCompression"},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := tl.newDB(b, map[string]string{"compression": c.compression})
			path, logical := writeLargeSST(b, tl, db, 1_000_000, 200)
			t := openFile(b, path, nil)
			st, err := os.Stat(path)
			must(b, err)
			b.ReportAllocs()
			b.SetBytes(st.Size())
			var records int
			cpu0 := cpuTime(b)
			for b.Loop() {
				records = 0
				it := NewMergedIterator(t)
				for it.Next() {
					records++
				}
				must(b, it.Err())
			}
			if records != 1_000_000 {
				b.Fatalf("%d records", records)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			cpu := (cpuTime(b) - cpu0).Seconds() / float64(b.N)
			b.ReportMetric(float64(records)/sec, "records/s")
			b.ReportMetric(float64(logical)/1e6/sec, "logical-MB/s")
			b.ReportMetric(float64(st.Size())/1e6, "file-MB")
			// The scan's CPU time (user and system, all threads): throughput that does not
			// depend on what else the machine runs.
			b.ReportMetric(float64(st.Size())/1e6/cpu, "file-MB/cpu-s")
			b.ReportMetric(float64(logical)/1e6/cpu, "logical-MB/cpu-s")
		})
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	must(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
