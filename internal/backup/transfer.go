package backup

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/durable"
)

// fileAttempts is how many times a file's upload or download is tried before the transfer
// fails.
const fileAttempts = 3

// retryPause is the pause before a file's next attempt.
const retryPause = 200 * time.Millisecond

// Limiter bounds the bytes per second of every transfer that shares it (a token bucket
// with a burst of a quarter second). A nil *Limiter or a rate of 0 does not limit. Safe for
// concurrent use.
type Limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter of bytesPerSecond (0: unlimited).
func NewLimiter(bytesPerSecond int64) *Limiter {
	return &Limiter{rate: float64(bytesPerSecond), last: time.Now()}
}

// SetRate changes the rate (0: unlimited).
func (l *Limiter) SetRate(bytesPerSecond int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate = float64(bytesPerSecond)
}

// wait blocks until n bytes may pass, or ctx ends.
func (l *Limiter) wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.rate <= 0 {
		l.mu.Unlock()
		return nil
	}
	now := time.Now()
	burst := l.rate / 4
	l.tokens = min(burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d == 0 {
		return nil
	}
	return sleep(ctx, d)
}

// limitedReader passes r's bytes through a limiter and counts them.
type limitedReader struct {
	ctx  context.Context // the transfer's: a Read has no context of its own
	r    io.Reader
	l    *Limiter
	done func(n int64)
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if len(p) > 256<<10 {
		p = p[:256<<10]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.l.wait(r.ctx, n); werr != nil {
			return n, werr
		}
		if r.done != nil {
			r.done(int64(n))
		}
	}
	return n, err
}

// Progress is told the bytes transferred so far and the total.
type Progress func(done, total int64)

// UploadOptions configure [Upload].
type UploadOptions struct {
	// Decree and Timestamp (unix ms) are recorded in backup_metadata.
	Decree, Timestamp int64
	// Limiter bounds the rate; nil: unlimited.
	Limiter *Limiter
	// Progress, if set, is called as bytes go out.
	Progress Progress
	// Bytes, if set, counts every byte sent (a metric).
	Bytes func(n int64)
}

// Upload sends the checkpoint in the local directory dir to the partition directory
// remote on svc, as checkpoint name: every file, then backup_metadata, then
// current_checkpoint. A file that fails is tried again (fileAttempts in all); an error
// names the file. It returns the metadata written.
func Upload(ctx context.Context, svc blockservice.Service, dir, remote, name string, opts *UploadOptions) (Metadata, error) {
	if opts == nil {
		opts = &UploadOptions{}
	}
	md := Metadata{CheckpointDecree: opts.Decree, CheckpointTimestamp: opts.Timestamp, Files: []FileMeta{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return md, fmt.Errorf("backup: checkpoint %s: %w", dir, err)
	}
	var files []os.FileInfo
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return md, fmt.Errorf("backup: checkpoint %s: %w", dir, err)
		}
		files = append(files, fi)
		md.CheckpointTotalSize += fi.Size()
	}
	var sent int64
	for _, fi := range files {
		p := path.Join(remote, name, fi.Name())
		var ent blockservice.Entry
		for attempt := 1; ; attempt++ {
			base := sent
			ent, err = uploadFile(ctx, svc, filepath.Join(dir, fi.Name()), p, fi.Size(), opts, func(n int64) {
				sent += n
				if opts.Progress != nil {
					opts.Progress(sent, md.CheckpointTotalSize)
				}
			})
			if err == nil || attempt == fileAttempts || ctx.Err() != nil {
				break
			}
			sent = base
			if err := sleep(ctx, retryPause); err != nil {
				break
			}
		}
		if err != nil {
			return md, &FileError{Path: p, Err: err}
		}
		md.Files = append(md.Files, FileMeta{Name: fi.Name(), Size: ent.Size, MD5: ent.MD5})
	}
	if err := WriteJSON(ctx, svc, path.Join(remote, name, MetadataFile), md); err != nil {
		return md, err
	}
	if _, err := svc.Write(ctx, path.Join(remote, CurrentCheckpointFile), strings.NewReader(name),
		&blockservice.WriteOptions{Size: int64(len(name))}); err != nil {
		return md, err
	}
	return md, nil
}

func uploadFile(ctx context.Context, svc blockservice.Service, local, remote string, size int64, opts *UploadOptions, sent func(int64)) (blockservice.Entry, error) {
	f, err := os.Open(local)
	if err != nil {
		return blockservice.Entry{}, err
	}
	defer f.Close()
	h := md5.New()
	r := &limitedReader{ctx: ctx, r: io.TeeReader(f, h), l: opts.Limiter, done: func(n int64) {
		sent(n)
		if opts.Bytes != nil {
			opts.Bytes(n)
		}
	}}
	ent, err := svc.Write(ctx, remote, r, &blockservice.WriteOptions{Size: size})
	if err != nil {
		return ent, err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); ent.MD5 != "" && ent.MD5 != sum {
		return ent, fmt.Errorf("%w: provider recorded md5 %s, sent %s", ErrCorrupt, ent.MD5, sum)
	} else if ent.MD5 == "" {
		ent.MD5 = sum
	}
	return ent, nil
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DownloadOptions configure [Download].
type DownloadOptions struct {
	Limiter  *Limiter
	Progress Progress
	// Bytes, if set, counts every byte received (a metric).
	Bytes func(n int64)
}

// ReadCheckpoint reads the partition directory remote's current_checkpoint and that
// checkpoint's backup_metadata. It returns the checkpoint's directory (remote/name).
func ReadCheckpoint(ctx context.Context, svc blockservice.Service, remote string) (string, Metadata, error) {
	var md Metadata
	b, err := ReadFile(ctx, svc, path.Join(remote, CurrentCheckpointFile))
	if err != nil {
		return "", md, err
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return "", md, &FileError{Path: path.Join(remote, CurrentCheckpointFile), Err: fmt.Errorf("%w: bad checkpoint name %q", ErrCorrupt, name)}
	}
	dir := path.Join(remote, name)
	if err := ReadJSON(ctx, svc, path.Join(dir, MetadataFile), &md); err != nil {
		return "", md, err
	}
	seen := map[string]bool{}
	for _, f := range md.Files {
		if f.Name == "" || strings.ContainsAny(f.Name, "/\\") || strings.HasPrefix(f.Name, ".") || seen[f.Name] || f.Size < 0 {
			return "", md, &FileError{Path: path.Join(dir, MetadataFile), Err: fmt.Errorf("%w: bad file entry %+v", ErrCorrupt, f)}
		}
		seen[f.Name] = true
	}
	return dir, md, nil
}

// Download fetches the partition checkpoint under remote into the local directory dir
// (created; it must not hold other files), checking every file's size and md5 against
// backup_metadata. A file that fails to transfer is tried again; a file whose bytes do not
// match is not (the provider holds bad bytes), and fails with a [*FileError] wrapping
// [ErrCorrupt]. It returns the metadata.
func Download(ctx context.Context, svc blockservice.Service, remote, dir string, opts *DownloadOptions) (Metadata, error) {
	if opts == nil {
		opts = &DownloadOptions{}
	}
	cdir, md, err := ReadCheckpoint(ctx, svc, remote)
	if err != nil {
		return md, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return md, fmt.Errorf("backup: %w", err)
	}
	var total, got int64
	for _, f := range md.Files {
		total += f.Size
	}
	files := slices.Clone(md.Files)
	for _, f := range files {
		p := path.Join(cdir, f.Name)
		for attempt := 1; ; attempt++ {
			base := got
			err = FetchFile(ctx, svc, p, filepath.Join(dir, f.Name), f, func(n int64) {
				got += n
				if opts.Bytes != nil {
					opts.Bytes(n)
				}
				if opts.Progress != nil {
					opts.Progress(got, total)
				}
			}, opts.Limiter)
			if err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, blockservice.ErrChecksum) ||
				errors.Is(err, blockservice.ErrNotFound) || attempt == fileAttempts || ctx.Err() != nil {
				break
			}
			got = base
			if err := sleep(ctx, retryPause); err != nil {
				break
			}
		}
		if err != nil {
			return md, &FileError{Path: p, Err: err}
		}
	}
	if err := durable.SyncDir(dir); err != nil {
		return md, fmt.Errorf("backup: %w", err)
	}
	return md, nil
}

// FetchFile copies the file remote of svc to the local file local, through l (nil: no
// limit), telling got of every byte received, and checks it against want's size and md5: a
// mismatch is an error wrapping [ErrCorrupt].
func FetchFile(ctx context.Context, svc blockservice.Service, remote, local string, want FileMeta, got func(int64), l *Limiter) error {
	r, err := svc.Read(ctx, remote, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.Create(local)
	if err != nil {
		return err
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), &limitedReader{ctx: ctx, r: r, l: l, done: got})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != want.Size {
		return fmt.Errorf("%w: %d bytes, backup_metadata says %d", ErrCorrupt, n, want.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(sum, want.MD5) {
		return fmt.Errorf("%w: md5 %s, backup_metadata says %s", ErrCorrupt, sum, want.MD5)
	}
	return nil
}
