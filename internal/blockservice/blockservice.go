package blockservice

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"
)

// Service is one block service: a tree of files addressed by slash-separated paths relative
// to the service's root (see the package doc for paths, directories and the providers).
// Every method takes the context first and is safe for concurrent use.
type Service interface {
	// Stat describes the file or directory at p; [ErrNotFound] if there is neither.
	Stat(ctx context.Context, p string) (Entry, error)
	// List describes what is directly under the directory dir ("" is the root): files
	// with their size and md5, and subdirectories, sorted by name. [ErrNotFound] if dir
	// is not a directory.
	List(ctx context.Context, dir string) ([]Entry, error)
	// Read opens the file p for reading, the whole file or the range opts asks for (nil:
	// the whole file, unverified); [ErrNotFound] if there is no file p. The caller
	// closes the reader. With opts.Verify the reader checks the size and md5 recorded for
	// the file as it goes: a mismatch is an error wrapping [ErrChecksum] in place of
	// io.EOF. ctx bounds the opening and, on s3, the whole transfer.
	Read(ctx context.Context, p string, opts *ReadOptions) (io.ReadCloser, error)
	// Write creates or replaces the file p with everything r yields and returns its entry
	// (size and md5). A write is atomic: readers see the old file or the new one, never
	// part of it, and a failed or cancelled write leaves the old one. Directories above
	// p are created as needed. opts may be nil.
	Write(ctx context.Context, p string, r io.Reader, opts *WriteOptions) (Entry, error)
	// Remove removes the file p; [ErrNotFound] if there is no file p.
	Remove(ctx context.Context, p string) error
	// RemoveAll removes the directory dir and everything under it; nothing there is not
	// an error. The root cannot be removed.
	RemoveAll(ctx context.Context, dir string) error
}

// Entry describes a file or a directory of a [Service].
type Entry struct {
	// Name is the last element of the entry's path.
	Name string
	// IsDir is true for a directory; its Size and MD5 are zero.
	IsDir bool
	// Size is the file's length in bytes.
	Size int64
	// MD5 is the file's md5 sum in lowercase hex, as Pegasus's metadata files carry it;
	// empty only for an s3 object written by another tool without a readable md5.
	MD5 string
}

// ReadOptions say what part of a file [Service.Read] yields. The zero value means the
// whole file, unverified.
type ReadOptions struct {
	// Offset is where reading starts, in bytes from the start of the file. At or past the
	// end the reader yields nothing.
	Offset int64
	// Length is how many bytes to read at most; 0 means up to the end.
	Length int64
	// Verify checks the bytes read against the file's recorded size and md5 (only for the
	// whole file: with Offset or Length set Read fails with [ErrInvalid]).
	Verify bool
}

// WriteOptions say what [Service.Write] is given. The zero value means a stream of
// unknown length and md5.
type WriteOptions struct {
	// Size, if positive, is the number of bytes r yields; a shorter or longer stream fails
	// the write with [ErrChecksum]. It lets s3 pick its upload strategy up front.
	Size int64
	// MD5, if set, is the md5 (lowercase hex) the bytes must have; a mismatch fails the
	// write with [ErrChecksum] and leaves nothing written. On s3 a known md5 also spares
	// a multipart upload the server-side copy that records it.
	MD5 string
}

// Errors of a [Service]; test with errors.Is.
var (
	// ErrNotFound: there is no such file (or directory, where one was asked for).
	ErrNotFound = errors.New("blockservice: not found")
	// ErrChecksum: the bytes do not have the size or md5 that was expected or recorded.
	ErrChecksum = errors.New("blockservice: size or md5 mismatch")
	// ErrInvalid: a bad path (a ".." element, an element starting with ".", the root
	// where a file is needed) or bad options.
	ErrInvalid = errors.New("blockservice: invalid argument")
	// ErrUnknownProvider: no block service of that name is configured.
	ErrUnknownProvider = errors.New("blockservice: unknown provider")
)

// Error is the error of one operation of a [Service]: it names the provider, the operation
// and the path, and wraps the cause (errors.Is sees [ErrNotFound] and the others through it).
type Error struct {
	// Provider is the provider's type and configured name, e.g. `s3 "backup"`.
	Provider string
	// Op is the operation: stat, list, read, write, remove, remove_all.
	Op string
	// Path is the path the operation was given.
	Path string
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("blockservice: %s: %s %q: %v", e.Provider, e.Op, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// UnsupportedTypeError is [Open]'s answer to a provider type it does not build, such as
// Pegasus's hdfs_service. Its text is what an operator should be told, and nothing more.
type UnsupportedTypeError struct {
	Type string
}

func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("provider type %s is not supported; use local_service or s3", e.Type)
}

// cleanPath checks a path given to a Service and returns it cleaned, without leading or
// trailing slashes ("" for the root). A leading slash is allowed (Pegasus writes paths
// that way). A ".." element, a NUL byte or a backslash is refused, so a path never leaves
// the root whatever the provider; so is an element starting with "." (local_service names
// its metadata and temporary files so, and both providers refuse such names so that a tree
// means the same on either).
func cleanPath(p string) (string, error) {
	if strings.ContainsAny(p, "\x00\\") {
		return "", fmt.Errorf("%w: path %q has a NUL byte or a backslash", ErrInvalid, p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("%w: path %q has a \"..\" element", ErrInvalid, p)
		}
	}
	c := strings.Trim(path.Clean("/"+p), "/")
	if c == "" {
		return "", nil
	}
	for _, elem := range strings.Split(c, "/") {
		if strings.HasPrefix(elem, ".") {
			return "", fmt.Errorf("%w: path %q has an element starting with \".\"", ErrInvalid, p)
		}
	}
	return c, nil
}

// checkReadOptions returns opts with defaults filled, or an error for bad ones.
func checkReadOptions(opts *ReadOptions) (ReadOptions, error) {
	if opts == nil {
		return ReadOptions{}, nil
	}
	o := *opts
	if o.Offset < 0 || o.Length < 0 {
		return o, fmt.Errorf("%w: negative offset %d or length %d", ErrInvalid, o.Offset, o.Length)
	}
	if o.Verify && (o.Offset != 0 || o.Length != 0) {
		return o, fmt.Errorf("%w: only a whole-file read can be verified", ErrInvalid)
	}
	return o, nil
}

// checkWriteOptions returns opts with defaults filled, or an error for bad ones.
func checkWriteOptions(opts *WriteOptions) (WriteOptions, error) {
	if opts == nil {
		return WriteOptions{}, nil
	}
	o := *opts
	if o.Size < 0 {
		return o, fmt.Errorf("%w: negative size %d", ErrInvalid, o.Size)
	}
	if o.MD5 != "" {
		if !isMD5(o.MD5) {
			return o, fmt.Errorf("%w: md5 %q is not 32 hex digits", ErrInvalid, o.MD5)
		}
		o.MD5 = strings.ToLower(o.MD5)
	}
	return o, nil
}

// isMD5 reports whether s is an md5 sum in hex.
func isMD5(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == md5.Size
}

// tally hashes and counts the bytes that pass through a reader.
type tally struct {
	h hash.Hash
	n int64
}

func newTally() tally { return tally{h: md5.New()} }

func (t *tally) add(p []byte) {
	t.h.Write(p)
	t.n += int64(len(p))
}

// sum returns the md5 of the bytes so far, in hex.
func (t *tally) sum() string { return hex.EncodeToString(t.h.Sum(nil)) }

// summer tallies what a write reads from its source, and checks it against the size and
// md5 the writer was promised.
type summer struct {
	tally
	r    io.Reader
	want WriteOptions
}

func newSummer(r io.Reader, want WriteOptions) *summer {
	return &summer{tally: newTally(), r: r, want: want}
}

// Read reads from the source, failing once the source yields more than the promised size.
func (s *summer) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.add(p[:n])
	if s.want.Size > 0 && s.n > s.want.Size {
		return n, fmt.Errorf("%w: the source yields more than the %d bytes promised", ErrChecksum, s.want.Size)
	}
	return n, err
}

// check compares what was read, all of it, with what was promised.
func (s *summer) check() error {
	if s.want.Size > 0 && s.n != s.want.Size {
		return fmt.Errorf("%w: the source yields %d bytes, %d were promised", ErrChecksum, s.n, s.want.Size)
	}
	if s.want.MD5 != "" && s.sum() != s.want.MD5 {
		return fmt.Errorf("%w: the source's md5 is %s, %s was promised", ErrChecksum, s.sum(), s.want.MD5)
	}
	return nil
}

// copyChunks copies src to dst through buf, checking ctx between chunks, so a long copy
// ends soon after ctx does.
func copyChunks(ctx context.Context, dst io.Writer, src io.Reader, buf []byte) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return nil
		default:
			return err
		}
	}
}

// verifier wraps the reader of a whole file and checks, at its end, that the bytes have the
// size and md5 recorded for the file.
type verifier struct {
	tally
	rc   io.ReadCloser
	want Entry
}

func newVerifier(rc io.ReadCloser, want Entry) *verifier {
	return &verifier{tally: newTally(), rc: rc, want: want}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.add(p[:n])
	switch {
	case v.n > v.want.Size:
		return n, fmt.Errorf("%w: %s has more than its recorded %d bytes", ErrChecksum, v.want.Name, v.want.Size)
	case err != io.EOF:
		return n, err
	case v.n != v.want.Size:
		return n, fmt.Errorf("%w: %s has %d bytes, %d recorded", ErrChecksum, v.want.Name, v.n, v.want.Size)
	case v.want.MD5 == "":
		return n, fmt.Errorf("%w: %s has no recorded md5", ErrChecksum, v.want.Name)
	case v.sum() != v.want.MD5:
		return n, fmt.Errorf("%w: %s has md5 %s, %s recorded", ErrChecksum, v.want.Name, v.sum(), v.want.MD5)
	}
	return n, err
}

func (v *verifier) Close() error { return v.rc.Close() }
