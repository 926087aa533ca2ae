package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/blockservice"
)

func localService(t *testing.T) (blockservice.Service, string) {
	t.Helper()
	root := t.TempDir()
	svc, err := blockservice.Open("local", map[string]string{"type": "local_service", "args": root})
	if err != nil {
		t.Fatal(err)
	}
	return svc, root
}

func writeCheckpoint(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, size := range map[string]int{"000001.sst": 300 << 10, "MANIFEST-000001": 100, "OPTIONS-000002": 0} {
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte(name[:1]), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestUploadDownload(t *testing.T) {
	svc, root := localService(t)
	dir := writeCheckpoint(t)
	remote := PartitionDir(Root("", "c1"), 1700000000000, "temp", 2, 3)
	var progress int64
	md, err := Upload(t.Context(), svc, dir, remote, CheckpointName("127.0.0.1:34801"), &UploadOptions{
		Decree: 42, Timestamp: 7, Progress: func(done, total int64) { progress = done }})
	if err != nil {
		t.Fatal(err)
	}
	if md.CheckpointDecree != 42 || len(md.Files) != 3 || md.CheckpointTotalSize != 300<<10+100 || progress != md.CheckpointTotalSize {
		t.Fatalf("metadata %+v, progress %d", md, progress)
	}
	for _, p := range []string{"c1/1700000000000/temp_2/3/current_checkpoint", "c1/1700000000000/temp_2/3/chkpt_127.0.0.1_34801/backup_metadata",
		"c1/1700000000000/temp_2/3/chkpt_127.0.0.1_34801/000001.sst"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Fatalf("layout: %v", err)
		}
	}
	out := filepath.Join(t.TempDir(), "restore")
	got, err := Download(t.Context(), svc, remote, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.CheckpointDecree != 42 {
		t.Fatalf("downloaded metadata %+v", got)
	}
	b, err := os.ReadFile(filepath.Join(out, "000001.sst"))
	if err != nil || len(b) != 300<<10 {
		t.Fatalf("downloaded file: %d bytes, %v", len(b), err)
	}

	// A flipped byte on the provider fails the download, naming the file.
	sst := filepath.Join(root, "c1/1700000000000/temp_2/3/chkpt_127.0.0.1_34801/000001.sst")
	raw, _ := os.ReadFile(sst)
	raw[1000] ^= 0xff
	if err := os.WriteFile(sst, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Download(t.Context(), svc, remote, filepath.Join(t.TempDir(), "r2"), nil)
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, ErrCorrupt) || filepath.Base(fe.Path) != "000001.sst" {
		t.Fatalf("corrupt file: %v", err)
	}
	// A missing file likewise.
	if err := os.Remove(sst); err != nil {
		t.Fatal(err)
	}
	_, err = Download(t.Context(), svc, remote, filepath.Join(t.TempDir(), "r3"), nil)
	if !errors.As(err, &fe) || !errors.Is(err, blockservice.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(1 << 20)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A transfer far above the burst waits, and a cancelled one stops waiting.
	if err := l.wait(ctx, 4<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v", err)
	}
	var nilLimiter *Limiter
	if err := nilLimiter.wait(ctx, 1<<30); err != nil {
		t.Fatal(err)
	}
	l.SetRate(0)
	if err := l.wait(ctx, 1<<30); err != nil {
		t.Fatal(err)
	}
}

// failingWrites is a real service whose writes of files named fail fail, the first
// failures times (-1: always), before reaching it.
type failingWrites struct {
	blockservice.Service
	fail     string
	failures int
	tried    int
}

func (f *failingWrites) Write(ctx context.Context, p string, r io.Reader, opts *blockservice.WriteOptions) (blockservice.Entry, error) {
	if path.Base(p) == f.fail {
		f.tried++
		if f.failures < 0 || f.tried <= f.failures {
			_, _ = io.CopyN(io.Discard, r, 1000) // part of the file sent, then the failure
			return blockservice.Entry{}, errors.New("connection reset")
		}
	}
	return f.Service.Write(ctx, p, r, opts)
}

// A file whose upload fails is tried again; one that fails every time fails the upload,
// naming it, and leaves no backup_metadata or current_checkpoint behind: a checkpoint is
// never uploaded partly and shown as complete.
func TestUploadRetriesOrFails(t *testing.T) {
	svc, _ := localService(t)
	dir := writeCheckpoint(t)
	remote := PartitionDir(Root("", "c1"), 1700000000000, "temp", 2, 0)
	flaky := &failingWrites{Service: svc, fail: "000001.sst", failures: fileAttempts - 1}
	if _, err := Upload(t.Context(), flaky, dir, remote, "chkpt_a", nil); err != nil {
		t.Fatalf("upload with %d failed attempts: %v", fileAttempts-1, err)
	}
	if flaky.tried != fileAttempts {
		t.Fatalf("%d attempts, want %d", flaky.tried, fileAttempts)
	}
	if _, _, err := ReadCheckpoint(t.Context(), svc, remote); err != nil {
		t.Fatalf("the uploaded checkpoint: %v", err)
	}

	remote = PartitionDir(Root("", "c1"), 1700000000000, "temp", 2, 1)
	broken := &failingWrites{Service: svc, fail: "000001.sst", failures: -1}
	_, err := Upload(t.Context(), broken, dir, remote, "chkpt_a", nil)
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(fe.Path, "000001.sst") || broken.tried != fileAttempts {
		t.Fatalf("upload that always fails: %v after %d attempts", err, broken.tried)
	}
	for _, p := range []string{path.Join(remote, "chkpt_a", MetadataFile), path.Join(remote, CurrentCheckpointFile)} {
		if _, err := svc.Stat(t.Context(), p); !errors.Is(err, blockservice.ErrNotFound) {
			t.Fatalf("%s after a failed upload: %v", p, err)
		}
	}
	if _, _, err := ReadCheckpoint(t.Context(), svc, remote); err == nil {
		t.Fatal("a failed upload reads as a checkpoint")
	}
}
