package blockservice

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TypeS3 is the provider type of a bucket of an S3-compatible object store.
const TypeS3 = "s3"

// Limits of S3 uploads.
const (
	// DefaultPartSizeMB is the part size of multipart uploads unless part_size_mb says
	// otherwise: the memory one write holds.
	DefaultPartSizeMB = 8
	// DefaultPartsInFlight is how many parts of one multipart upload are sent at once
	// unless parts_in_flight says otherwise: a write holds this many parts in memory.
	DefaultPartsInFlight = 4
	maxPartsInFlight     = 16
	minPartSizeMB        = 5 // S3's least part (but the last)
	maxPartSizeMB        = 5 << 10
	maxParts             = 10000
	// maxCopySize is the largest object one CopyObject request copies.
	maxCopySize = 5 << 30
	// cleanupTimeout bounds the requests that undo a failed write after its ctx is done.
	cleanupTimeout = 30 * time.Second
)

// md5Key is the user metadata key (header x-amz-meta-md5) that holds an object's md5.
const md5Key = "md5"

// Environment variables that supply s3 credentials a section leaves empty.
const (
	EnvAccessKey    = "AWS_ACCESS_KEY_ID"
	EnvSecretKey    = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken = "AWS_SESSION_TOKEN"
)

// s3Keys are the keys of an s3 section.
var s3Keys = []string{"type", "args", "region", "access_key", "secret_key", "session_token",
	"ca_file", "bucket_lookup", "prefix", "part_size_mb", "parts_in_flight"}

// s3svc is the s3 provider. Paths are object keys under an optional prefix; directories are
// the key prefixes that end in "/", so a directory exists while it holds an object.
type s3svc struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string // "" or ends in "/"
	partSize int64
	inFlight int       // parts of one upload sent at once
	parts    sync.Pool // *[]byte of partSize
}

var _ provider = (*s3svc)(nil)

// newS3 opens an s3 section (see the package doc for its keys).
func newS3(section map[string]string) (*s3svc, error) {
	if err := checkKeys(section, s3Keys...); err != nil {
		return nil, err
	}
	args := strings.Fields(section["args"])
	if len(args) != 2 {
		return nil, fmt.Errorf("%w: args must be \"<endpoint URL> <bucket>\", got %q", ErrInvalid, section["args"])
	}
	u, err := url.Parse(args[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%w: endpoint %q is not http://host[:port] or https://host[:port]", ErrInvalid, args[0])
	}
	secure := u.Scheme == "https"
	bucket := args[1]

	access, secret, token := section["access_key"], section["secret_key"], section["session_token"]
	if access == "" && secret == "" {
		access, secret = os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)
		if token == "" {
			token = os.Getenv(EnvSessionToken)
		}
	}
	if access == "" || secret == "" {
		return nil, fmt.Errorf("%w: access_key and secret_key (or %s and %s) are both needed",
			ErrInvalid, EnvAccessKey, EnvSecretKey)
	}

	lookup := minio.BucketLookupAuto
	switch section["bucket_lookup"] {
	case "", "auto":
	case "path":
		lookup = minio.BucketLookupPath
	case "virtual_host":
		lookup = minio.BucketLookupDNS
	default:
		return nil, fmt.Errorf("%w: bucket_lookup %q is not auto, path or virtual_host", ErrInvalid, section["bucket_lookup"])
	}

	partMB := int64(DefaultPartSizeMB)
	if v := section["part_size_mb"]; v != "" {
		partMB, err = strconv.ParseInt(v, 10, 64)
		if err != nil || partMB < minPartSizeMB || partMB > maxPartSizeMB {
			return nil, fmt.Errorf("%w: part_size_mb %q is not in [%d, %d]", ErrInvalid, v, minPartSizeMB, maxPartSizeMB)
		}
	}

	inFlight := int64(DefaultPartsInFlight)
	if v := section["parts_in_flight"]; v != "" {
		inFlight, err = strconv.ParseInt(v, 10, 64)
		if err != nil || inFlight < 1 || inFlight > maxPartsInFlight {
			return nil, fmt.Errorf("%w: parts_in_flight %q is not in [1, %d]", ErrInvalid, v, maxPartsInFlight)
		}
	}

	prefix, err := cleanPath(section["prefix"])
	if err != nil {
		return nil, fmt.Errorf("prefix: %w", err)
	}
	if prefix != "" {
		prefix += "/"
	}

	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	if ca := section["ca_file"]; ca != "" {
		if !secure {
			return nil, fmt.Errorf("%w: ca_file needs an https endpoint", ErrInvalid)
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%w: ca_file: %v", ErrInvalid, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca_file %s holds no PEM certificate", ErrInvalid, ca)
		}
		if transport.TLSClientConfig == nil {
			transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		transport.TLSClientConfig.RootCAs = pool
	}

	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(access, secret, token),
		Secure:       secure,
		Transport:    transport,
		Region:       section["region"],
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &s3svc{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   bucket,
		prefix:   prefix,
		partSize: partMB << 20,
		inFlight: int(inFlight),
	}, nil
}

func (s *s3svc) notFound(_ string, err error) bool { return isNotFound(err) }

// isNotFound reports whether err is the store's answer that a key does not exist (a
// missing bucket is not that: it is a configuration error, reported as it is).
func isNotFound(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	return er.Code == "NoSuchKey" || (er.StatusCode == http.StatusNotFound && er.Code != "NoSuchBucket")
}

// key is the object key of the clean path c.
func (s *s3svc) key(c string) string { return s.prefix + c }

// dirPrefix is the key prefix of the objects under the clean directory path c.
func (s *s3svc) dirPrefix(c string) string {
	if c == "" {
		return s.prefix
	}
	return s.prefix + c + "/"
}

// entryOf describes the object info: its md5 is the md5 recorded in the object's metadata
// or, failing that, the ETag when it is a plain md5 (an object uploaded in one part and not
// encrypted with a customer key).
func entryOf(name string, info minio.ObjectInfo) Entry {
	e := Entry{Name: name, Size: info.Size}
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, md5Key) && isMD5(v) {
			e.MD5 = strings.ToLower(v)
			return e
		}
	}
	if etag := strings.Trim(info.ETag, `"`); isMD5(etag) {
		e.MD5 = strings.ToLower(etag)
	}
	return e
}

// statObject describes the object of the clean file path c.
func (s *s3svc) statObject(ctx context.Context, c string) (Entry, error) {
	info, err := s.client.StatObject(ctx, s.bucket, s.key(c), minio.StatObjectOptions{})
	if err != nil {
		return Entry{}, err
	}
	return entryOf(path.Base(c), info), nil
}

func (s *s3svc) stat(ctx context.Context, c string) (Entry, error) {
	if c == "" {
		ok, err := s.client.BucketExists(ctx, s.bucket)
		if err != nil {
			return Entry{}, err
		}
		if !ok {
			return Entry{}, fmt.Errorf("%w: bucket %s does not exist", ErrNotFound, s.bucket)
		}
		return Entry{IsDir: true}, nil
	}
	e, err := s.statObject(ctx, c)
	if !isNotFound(err) {
		return e, err
	}
	// No object: a directory if some file is below c.
	dir, herr := s.hasFile(ctx, s.dirPrefix(c))
	if herr != nil {
		return Entry{}, herr
	}
	if dir {
		return Entry{Name: path.Base(c), IsDir: true}, nil
	}
	return Entry{}, err
}

// hasFile reports whether some object below prefix is a file, not a "directory marker"
// (a key ending in "/", as some tools make for folders). Only objects count: a listing by
// delimiter also shows prefixes with no file below (a store with real directories, such as
// SeaweedFS, keeps an emptied one a while), which are no directory here.
func (s *s3svc) hasFile(ctx context.Context, prefix string) (bool, error) {
	for info := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if info.Err != nil {
			return false, info.Err
		}
		if !strings.HasSuffix(info.Key, "/") {
			return true, nil
		}
	}
	return false, nil
}

func (s *s3svc) list(ctx context.Context, c string) ([]Entry, error) {
	prefix := s.dirPrefix(c)
	out := []Entry{}
	var unknown []int // entries whose md5 the listing does not give
	for info := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if info.Err != nil {
			return nil, info.Err
		}
		name := strings.TrimPrefix(info.Key, prefix)
		isDir := strings.HasSuffix(name, "/")
		name = strings.TrimSuffix(name, "/")
		if name == "" || strings.HasPrefix(name, ".") {
			continue // a directory marker object, or a name no path can reach
		}
		if isDir {
			// A prefix may hold no file (see hasFile): one more listing each.
			ok, err := s.hasFile(ctx, info.Key)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, Entry{Name: name, IsDir: true})
			}
			continue
		}
		e := entryOf(name, info)
		if e.MD5 == "" {
			unknown = append(unknown, len(out))
		}
		out = append(out, e)
	}
	if len(out) == 0 && c != "" {
		return nil, fmt.Errorf("%w: no objects under %s", ErrNotFound, prefix)
	}
	// A listing carries ETags, not metadata: a multipart upload's md5 takes a HEAD each.
	for _, i := range unknown {
		e, err := s.statObject(ctx, path.Join(c, out[i].Name))
		if isNotFound(err) {
			continue // removed meanwhile: listed as it was
		}
		if err != nil {
			return nil, err
		}
		out[i].MD5 = e.MD5
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *s3svc) read(ctx context.Context, c string, o ReadOptions) (io.ReadCloser, error) {
	var (
		get minio.GetObjectOptions
		err error
	)
	switch {
	case o.Length > 0:
		err = get.SetRange(o.Offset, o.Offset+o.Length-1)
	case o.Offset > 0:
		err = get.SetRange(o.Offset, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, s.key(c), get)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "InvalidRange" {
			// The range starts at or past the end (S3 answers 416): nothing to read.
			// The object is there, or the store would have said NoSuchKey.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, err
	}
	if o.Verify {
		return newVerifier(body, entryOf(path.Base(c), info)), nil
	}
	return body, nil
}

// write uploads r. Up to one part it is one PUT, carrying its md5 as Content-MD5 (which the
// store checks) and in the metadata. Past one part it is a multipart upload of fixed-size
// parts, read one at a time into at most inFlight buffers, so a write holds inFlight parts
// in memory whatever the file's size; nothing is visible until the upload completes, and a
// failed or refused upload is aborted.
func (s *s3svc) write(ctx context.Context, c string, r io.Reader, o WriteOptions) (Entry, error) {
	partSize := s.partSize
	if need := (o.Size + maxParts - 1) / maxParts; need > partSize {
		partSize = (need + 1<<20 - 1) &^ (1<<20 - 1) // a known huge size: bigger parts
	}
	buf := s.getPart(partSize)
	defer s.putPart(buf)

	sum := newSummer(r, o)
	n, err := io.ReadFull(sum, buf)
	if err == nil {
		// A full part: is there more?
		var one [1]byte
		k, err2 := io.ReadFull(sum, one[:])
		switch {
		case err2 == nil:
			rest := io.MultiReader(bytes.NewReader(one[:k]), sum)
			return s.writeMultipart(ctx, c, buf, n, rest, sum, o)
		case err2 != io.EOF:
			return Entry{}, err2
		}
	} else if err != io.EOF && err != io.ErrUnexpectedEOF {
		return Entry{}, err
	}
	if err := sum.check(); err != nil {
		return Entry{}, err
	}
	md5hex := sum.sum()
	raw, _ := hex.DecodeString(md5hex)
	_, err = s.core.PutObject(ctx, s.bucket, s.key(c), bytes.NewReader(buf[:n]), int64(n),
		base64.StdEncoding.EncodeToString(raw), "", minio.PutObjectOptions{UserMetadata: map[string]string{md5Key: md5hex}})
	if err != nil {
		return Entry{}, err
	}
	return Entry{Name: path.Base(c), Size: int64(n), MD5: md5hex}, nil
}

// writeMultipart uploads buf[:n] and then the rest of the stream in parts of len(buf).
func (s *s3svc) writeMultipart(ctx context.Context, c string, buf []byte, n int, rest io.Reader, sum *summer, o WriteOptions) (Entry, error) {
	key := s.key(c)
	meta := map[string]string{}
	if o.MD5 != "" {
		meta[md5Key] = o.MD5 // known up front: recorded with the upload, checked at its end
	}
	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{UserMetadata: meta})
	if err != nil {
		return Entry{}, err
	}
	completed := false
	defer func() {
		if !completed {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			_ = s.core.AbortMultipartUpload(cctx, s.bucket, key, uploadID)
		}
	}()
	parts, err := s.uploadParts(ctx, key, uploadID, buf, n, rest)
	if err != nil {
		return Entry{}, err
	}
	if err := sum.check(); err != nil {
		return Entry{}, err
	}
	info, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, parts, minio.PutObjectOptions{})
	if err != nil {
		return Entry{}, err
	}
	completed = true
	e := Entry{Name: path.Base(c), Size: sum.n, MD5: sum.sum()}
	if o.MD5 == "" {
		if err := s.recordMD5(ctx, key, info.ETag, e); err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			_ = s.client.RemoveObject(cctx, s.bucket, key, minio.RemoveObjectOptions{})
			return Entry{}, fmt.Errorf("record md5 after the upload (object removed): %w", err)
		}
	}
	return e, nil
}

// uploadParts uploads first[:n] as part 1 of the upload and the rest of the stream in
// parts of len(first), up to s.inFlight parts at once (the store works on several while the
// next is read), and returns the parts in order. It holds at most s.inFlight part buffers,
// first among them (which stays the caller's); its goroutines have ended when it returns.
func (s *s3svc) uploadParts(ctx context.Context, key, uploadID string, first []byte, n int, rest io.Reader) ([]minio.CompletePart, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan []byte, s.inFlight) // buffers not being uploaded; sends never block
	made := 1
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		parts []minio.CompletePart
	)
	buf, num, last := first, 1, n < len(first)
	for {
		b, size, pn := buf, n, num
		wg.Go(func() {
			defer func() { free <- b }()
			part, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, pn, bytes.NewReader(b[:size]), int64(size), minio.PutObjectPartOptions{})
			if err != nil {
				cancel(fmt.Errorf("part %d: %w", pn, err))
				return
			}
			mu.Lock()
			parts = append(parts, minio.CompletePart{PartNumber: pn, ETag: part.ETag})
			mu.Unlock()
		})
		if last {
			break
		}
		// The next buffer: a free one, a new one while fewer than s.inFlight exist, or
		// the first to come back.
		buf = nil
		select {
		case buf = <-free:
		default:
			if made < s.inFlight {
				buf, made = s.getPart(int64(len(first))), made+1
			} else {
				select {
				case buf = <-free:
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			if buf != nil {
				free <- buf
			}
			break
		}
		var err error
		n, err = io.ReadFull(rest, buf)
		if err == io.EOF {
			free <- buf
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			free <- buf
			cancel(err)
			break
		}
		if num++; num > maxParts {
			free <- buf
			cancel(fmt.Errorf("%w: more than %d parts of %d MiB; raise part_size_mb or give the size",
				ErrInvalid, maxParts, len(first)>>20))
			break
		}
		last = err == io.ErrUnexpectedEOF
	}
	wg.Wait()
	close(free)
	for b := range free {
		if &b[0] != &first[0] {
			s.putPart(b)
		}
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	slices.SortFunc(parts, func(a, b minio.CompletePart) int { return a.PartNumber - b.PartNumber })
	return parts, nil
}

// recordMD5 puts e.MD5 into the metadata of the object key just uploaded (ETag etag) by a
// server-side copy onto itself, which S3 allows when the metadata is replaced. If another
// write replaced the object meanwhile the copy's ETag condition fails, and that is no
// error: the later write is what the path holds, and it records its own md5.
func (s *s3svc) recordMD5(ctx context.Context, key, etag string, e Entry) error {
	dst := minio.CopyDestOptions{Bucket: s.bucket, Object: key, ReplaceMetadata: true,
		UserMetadata: map[string]string{md5Key: e.MD5}}
	src := minio.CopySrcOptions{Bucket: s.bucket, Object: key, MatchETag: etag}
	var err error
	if e.Size <= maxCopySize {
		_, err = s.client.CopyObject(ctx, dst, src)
	} else {
		_, err = s.client.ComposeObject(ctx, dst, src)
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed) {
		return nil
	}
	return err
}

func (s *s3svc) getPart(size int64) []byte {
	if size == s.partSize {
		if bp, ok := s.parts.Get().(*[]byte); ok {
			return *bp
		}
	}
	return make([]byte, size)
}

func (s *s3svc) putPart(b []byte) {
	if int64(len(b)) == s.partSize {
		s.parts.Put(&b)
	}
}

func (s *s3svc) remove(ctx context.Context, c string) error {
	// S3 deletes are idempotent; the HEAD tells a missing file apart, as local_service does.
	if _, err := s.client.StatObject(ctx, s.bucket, s.key(c), minio.StatObjectOptions{}); err != nil {
		return err
	}
	return s.client.RemoveObject(ctx, s.bucket, s.key(c), minio.RemoveObjectOptions{})
}

func (s *s3svc) removeAll(ctx context.Context, c string) error {
	var listErr error
	objects := func(yield func(minio.ObjectInfo) bool) {
		for info := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.dirPrefix(c), Recursive: true}) {
			if info.Err != nil {
				listErr = info.Err
				return
			}
			if !yield(info) {
				return
			}
		}
	}
	results, err := s.client.RemoveObjectsWithIter(ctx, s.bucket, objects, minio.RemoveObjectsOptions{})
	if err != nil {
		return err
	}
	var errs []error
	for res := range results {
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", res.ObjectName, res.Err))
		}
	}
	if listErr != nil {
		errs = append(errs, listErr)
	}
	return errors.Join(errs...)
}
