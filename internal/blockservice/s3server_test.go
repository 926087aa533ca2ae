package blockservice

import (
	"strconv"
	"testing"

	"github.com/gopegasus/pegasus/internal/blockservice/s3test"
)

// s3Server is the real S3 server of the tests (package s3test).
type s3Server struct{ *s3test.Server }

// startS3 starts the S3 server for tb.
func startS3(tb testing.TB) *s3Server { return &s3Server{s3test.Start(tb)} }

// open opens an s3 block service on a new bucket, with more section keys if given.
func (s *s3Server) open(tb testing.TB, kv ...string) (Service, string) {
	tb.Helper()
	section, bucket := s.Section(tb, append([]string{"part_size_mb", strconv.Itoa(minPartSizeMB)}, kv...)...)
	svc, err := Open("test", section)
	noErr(tb, err)
	return svc, bucket
}
