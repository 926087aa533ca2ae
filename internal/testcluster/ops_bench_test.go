package testcluster

import (
	"bytes"
	crand "crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/blockservice/s3test"
	"github.com/gopegasus/pegasus/internal/idl"
)

// BenchmarkBackupRestore measures a one-time backup and a restore of a table of 3 replicas
// (4 partitions, 40,000 records of 1 KB that do not compress) to local_service and to the
// real S3 server, in MB/s of checkpoint bytes (as the replica servers count them: uploaded
// once per partition, downloaded by each replica of the restored table):
//
//	go test -run XXX -bench BackupRestore -benchtime 3x ./internal/testcluster/
func BenchmarkBackupRestore(b *testing.B) {
	b.Run("local", func(b *testing.B) {
		benchBackupRestore(b, "local", localSection(b.TempDir()))
	})
	b.Run("s3", func(b *testing.B) {
		section, _ := s3test.Start(b).Section(b)
		benchBackupRestore(b, "s3", section)
	})
}

func benchBackupRestore(b *testing.B, provider string, section map[string]string) {
	c := Start(b, Options{BlockServices: map[string]map[string]string{provider: section}})
	appID := c.CreateTableReplicas(b, "src", 4, 3)
	tbl := c.OpenTable(b, "src")
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			v := make([]byte, 1000)
			for i := w; i < 40000; i += 16 {
				_, _ = crand.Read(v)
				if err := tbl.Set(b.Context(), fmt.Appendf(nil, "h%06d", i), []byte("s"), v); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var backupTime, restoreTime time.Duration
	up0 := metricSum(b, c.ReplicaAddrs(), "server", "block_service_upload_bytes")
	down0 := metricSum(b, c.ReplicaAddrs(), "server", "block_service_download_bytes")
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		id := startBackup(b, c, appID, provider)
		waitBackup(b, c, appID, id)
		mid := time.Now()
		name := fmt.Sprintf("restored%d", i)
		for p, code := range waitRestore(b, c, restore(b, c, provider, "src", appID, id, name, false)) {
			if code != "ERR_OK" {
				b.Fatalf("partition %d: %s", p, code)
			}
		}
		restoreTime += time.Since(mid)
		backupTime += mid.Sub(start)
	}
	b.StopTimer()
	up := metricSum(b, c.ReplicaAddrs(), "server", "block_service_upload_bytes") - up0
	down := metricSum(b, c.ReplicaAddrs(), "server", "block_service_download_bytes") - down0
	b.ReportMetric(float64(up)/1e6/backupTime.Seconds(), "backup_MB/s")
	b.ReportMetric(float64(down)/1e6/restoreTime.Seconds(), "restore_MB/s")
}

// BenchmarkBulkLoad loads the same records into a table of 3 replicas (4 partitions) by a
// bulk load (prepare, then start and wait) and through the write path as `pegasus bench`'s
// load phase does (one set per record, 64 writers), and reports both in records/s and
// their ratio:
//
//	go test -run XXX -bench BulkLoad -benchtime 1x ./internal/testcluster/
//
// PEGASUS_BULKLOAD_RECORDS sets the records (default 50,000).
func BenchmarkBulkLoad(b *testing.B) {
	root := b.TempDir()
	c := Start(b, Options{BlockServices: map[string]map[string]string{"local": localSection(root)}})
	n := bulkRecords(b)
	input := csvRecords(n)
	svc, err := blockservice.Open("local", localSection(root))
	if err != nil {
		b.Fatal(err)
	}
	var bulkTime, writeTime time.Duration
	for i := 0; i < b.N; i++ {
		app := fmt.Sprintf("bulk%d", i)
		appID := c.CreateTableReplicas(b, app, 4, 3)
		start := time.Now()
		prepare(b, svc, input, app, appID, 4)
		startLocalBulkLoad(b, c, app)
		waitBulkStatus(b, c, app, idl.BulkLoadSucceed)
		bulkTime += time.Since(start)

		wapp := fmt.Sprintf("writes%d", i)
		c.CreateTableReplicas(b, wapp, 4, 3)
		tbl := c.OpenTable(b, wapp)
		lines := bytes.Split(input, []byte("\n"))[1:]
		var next atomic.Int64
		start = time.Now()
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for {
					j := next.Add(1) - 1
					if j >= int64(n) {
						return
					}
					f := bytes.SplitN(lines[j], []byte(","), 3)
					if err := tbl.Set(b.Context(), f[0], f[1], f[2]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		writeTime += time.Since(start)
	}
	bulk := float64(n*b.N) / bulkTime.Seconds()
	writes := float64(n*b.N) / writeTime.Seconds()
	b.ReportMetric(bulk, "bulk_records/s")
	b.ReportMetric(writes, "write_records/s")
	b.ReportMetric(bulk/writes, "bulk/write")
}
