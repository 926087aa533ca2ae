package blockservice

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// provider is one type of block service below [service]. Its methods get a path that is
// checked and cleaned (c; "" is the root, never given to read, write, remove and
// removeAll), options with their defaults filled and a ctx not yet done, and return bare
// errors, which service wraps.
type provider interface {
	stat(ctx context.Context, c string) (Entry, error)
	list(ctx context.Context, c string) ([]Entry, error)
	read(ctx context.Context, c string, o ReadOptions) (io.ReadCloser, error)
	write(ctx context.Context, c string, r io.Reader, o WriteOptions) (Entry, error)
	remove(ctx context.Context, c string) error
	removeAll(ctx context.Context, c string) error
	// notFound reports whether err, an error of operation op, means the path names nothing.
	notFound(op string, err error) bool
}

// service is the [Service] of a provider: the checks every provider makes alike, and the
// errors, each an *Error.
type service struct {
	label string // the provider's type and name, e.g. `s3 "backup"`
	p     provider
}

var _ Service = (*service)(nil)

func (s *service) fail(op, p string, err error) error {
	if s.p.notFound(op, err) && !errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return &Error{Provider: s.label, Op: op, Path: p, Err: err}
}

// begin checks a call's path (one naming a file, if file) and ctx.
func begin(ctx context.Context, p string, file bool) (string, error) {
	c, err := cleanPath(p)
	switch {
	case err != nil:
		return "", err
	case file && c == "":
		return "", fmt.Errorf("%w: the root is not a file", ErrInvalid)
	}
	return c, ctx.Err()
}

func (s *service) Stat(ctx context.Context, p string) (Entry, error) {
	c, err := begin(ctx, p, false)
	var e Entry
	if err == nil {
		e, err = s.p.stat(ctx, c)
	}
	if err != nil {
		return Entry{}, s.fail("stat", p, err)
	}
	return e, nil
}

func (s *service) List(ctx context.Context, dir string) ([]Entry, error) {
	c, err := begin(ctx, dir, false)
	var es []Entry
	if err == nil {
		es, err = s.p.list(ctx, c)
	}
	if err != nil {
		return nil, s.fail("list", dir, err)
	}
	return es, nil
}

func (s *service) Read(ctx context.Context, p string, opts *ReadOptions) (io.ReadCloser, error) {
	o, err := checkReadOptions(opts)
	var (
		c  string
		rc io.ReadCloser
	)
	if err == nil {
		c, err = begin(ctx, p, true)
	}
	if err == nil {
		rc, err = s.p.read(ctx, c, o)
	}
	if err != nil {
		return nil, s.fail("read", p, err)
	}
	return rc, nil
}

func (s *service) Write(ctx context.Context, p string, r io.Reader, opts *WriteOptions) (Entry, error) {
	o, err := checkWriteOptions(opts)
	var (
		c string
		e Entry
	)
	if err == nil {
		c, err = begin(ctx, p, true)
	}
	if err == nil {
		e, err = s.p.write(ctx, c, r, o)
	}
	if err != nil {
		return Entry{}, s.fail("write", p, err)
	}
	return e, nil
}

func (s *service) Remove(ctx context.Context, p string) error {
	c, err := begin(ctx, p, true)
	if err == nil {
		err = s.p.remove(ctx, c)
	}
	if err != nil {
		return s.fail("remove", p, err)
	}
	return nil
}

func (s *service) RemoveAll(ctx context.Context, dir string) error {
	c, err := begin(ctx, dir, false)
	if err == nil && c == "" {
		err = fmt.Errorf("%w: the root cannot be removed", ErrInvalid)
	}
	if err == nil {
		err = s.p.removeAll(ctx, c)
	}
	if err != nil {
		return s.fail("remove_all", dir, err)
	}
	return nil
}
