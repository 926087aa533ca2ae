package blockservice

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The s3 tests run against a real S3-compatible server, SeaweedFS's S3 gateway, started by
// the test as its own process. Where its binary is, in this order: $PEGASUS_S3_SERVER_BIN;
// <user cache dir>/gopegasus/seaweedfs-<version>/weed, where .ci/run builds it; `weed` on
// PATH. Without one the tests skip, unless CI=true, where they fail. PEGASUS_SKIP_S3=1
// skips them anywhere.
const (
	// seaweedfsVersion is the module version of SeaweedFS that .ci/run builds.
	seaweedfsVersion = "v0.0.0-20261109003541-7506e5f91cd6"
	envS3ServerBin   = "PEGASUS_S3_SERVER_BIN"
	envSkipS3        = "PEGASUS_SKIP_S3"
	testAccessKey    = "pegasus-test"
	testSecretKey    = "pegasus-test-secret"
)

// s3ServerBinary finds the SeaweedFS binary, or skips (or, under CI, fails) the test.
func s3ServerBinary(tb testing.TB) string {
	tb.Helper()
	if os.Getenv(envSkipS3) == "1" {
		tb.Skipf("%s=1: the tests against a real S3 server are skipped", envSkipS3)
	}
	if p := os.Getenv(envS3ServerBin); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("%s names no binary: %v", envS3ServerBin, err)
		}
		return p
	}
	if dir, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(dir, "gopegasus", "seaweedfs-"+seaweedfsVersion[strings.LastIndexByte(seaweedfsVersion, '-')+1:], "weed")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p
	}
	msg := fmt.Sprintf("no S3 server binary (SeaweedFS's weed): set %s, or build it as .ci/run does "+
		"(see README, \"Block services\"); %s=1 skips these tests", envS3ServerBin, envSkipS3)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// s3Server is a running SeaweedFS server with an S3 gateway on 127.0.0.1.
type s3Server struct {
	endpoint string // http://127.0.0.1:port
	client   *minio.Client
	buckets  atomic.Int32
}

// freePorts returns n distinct free TCP ports of 127.0.0.1.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		noErr(tb, err)
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return ports
}

// startS3 starts a SeaweedFS server (master, volume, filer and S3 gateway in one process)
// in a temporary directory, waits until it takes writes, and stops it at the test's end.
func startS3(tb testing.TB) *s3Server {
	tb.Helper()
	bin := s3ServerBinary(tb)
	dir := tb.TempDir()
	data := filepath.Join(dir, "data")
	noErr(tb, os.Mkdir(data, 0o755))
	cfg, err := json.Marshal(map[string]any{"identities": []any{map[string]any{
		"name":        "pegasus",
		"credentials": []any{map[string]string{"accessKey": testAccessKey, "secretKey": testSecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}})
	noErr(tb, err)
	cfgPath := filepath.Join(dir, "s3.json")
	noErr(tb, os.WriteFile(cfgPath, cfg, 0o644))

	// Every port is given: SeaweedFS's defaults are fixed ports (and port+10000 for gRPC).
	p := freePorts(tb, 8)
	port := func(i int) string { return strconv.Itoa(p[i]) }
	args := []string{"server",
		"-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + port(0), "-master.port.grpc=" + port(1),
		"-volume.port=" + port(2), "-volume.port.grpc=" + port(3),
		"-filer.port=" + port(4), "-filer.port.grpc=" + port(5),
		"-s3", "-s3.port=" + port(6), "-s3.port.grpc=" + port(7), "-s3.config=" + cfgPath,
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-filer.localSocket=" + filepath.Join(dir, "f.sock"), "-s3.localSocket=" + filepath.Join(dir, "s.sock"),
		"-master.telemetry=false",    // it would report to a server on the internet
		"-s3.autoCreateBucket=false", // as S3: a PUT into a missing bucket fails
		// Each bucket takes 7 volumes of its own: many small ones, so many buckets fit.
		"-master.volumeSizeLimitMB=64", "-volume.max=1000",
	}
	logPath := filepath.Join(dir, "weed.log")
	logFile, err := os.Create(logPath)
	noErr(tb, err)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	noErr(tb, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		_ = logFile.Close()
		close(exited)
	}()
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		// SeaweedFS puts its gRPC unix sockets in /tmp, whatever -dir says, and does not
		// always remove them when it stops.
		for i, name := range []string{"master", "volume", "filer", "s3"} {
			_ = os.Remove(fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", name, p[2*i+1]))
		}
		if tb.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			tb.Logf("SeaweedFS log (end):\n%s", b)
		}
	})

	s := &s3Server{endpoint: "http://127.0.0.1:" + port(6)}
	s.client, err = minio.New("127.0.0.1:"+port(6), &minio.Options{
		Creds: credentials.NewStaticV4(testAccessKey, testSecretKey, ""), Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	noErr(tb, err)

	// Ready is when a bucket can be made and written to. Another process's readiness can
	// only be asked for: ask every 200ms, for up to two minutes (a cold start on a loaded
	// machine takes a while).
	ctx, cancel := context.WithTimeout(tb.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	for {
		err := s.probe(ctx)
		if err == nil {
			break
		}
		select {
		case <-exited:
			tb.Fatalf("SeaweedFS exited before it was ready (%v); its log is %s", waitErr, logPath)
		case <-ctx.Done():
			tb.Fatalf("SeaweedFS not ready after %v: %v", time.Since(start), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	tb.Logf("SeaweedFS S3 gateway ready at %s after %v", s.endpoint, time.Since(start).Round(time.Millisecond))
	return s
}

func (s *s3Server) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.client.MakeBucket(ctx, "ready", minio.MakeBucketOptions{}); err != nil {
		if er := minio.ToErrorResponse(err); er.Code != "BucketAlreadyOwnedByYou" && er.Code != "BucketAlreadyExists" {
			return err
		}
	}
	_, err := s.client.PutObject(ctx, "ready", "probe", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	return err
}

// bucket makes a new, empty bucket.
func (s *s3Server) bucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("test-%d", s.buckets.Add(1))
	noErr(tb, s.client.MakeBucket(tb.Context(), name, minio.MakeBucketOptions{}))
	return name
}

// open opens an s3 block service on a new bucket, with more section keys if given.
func (s *s3Server) open(tb testing.TB, kv ...string) (Service, string) {
	tb.Helper()
	bucket := s.bucket(tb)
	section := map[string]string{
		"type": "s3", "args": s.endpoint + " " + bucket,
		"access_key": testAccessKey, "secret_key": testSecretKey,
		"region": "us-east-1", "bucket_lookup": "path", "part_size_mb": strconv.Itoa(minPartSizeMB),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		section[kv[i]] = kv[i+1]
	}
	svc, err := Open("test", section)
	noErr(tb, err)
	return svc, bucket
}
