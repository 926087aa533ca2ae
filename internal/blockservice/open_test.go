package blockservice

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/config"
)

func TestOpenHDFS(t *testing.T) {
	for _, typ := range []string{"hdfs_service", "fds_service"} {
		_, err := Open("hdfs", map[string]string{"type": typ, "args": "127.0.0.1:8020 /pegasus"})
		var ue *UnsupportedTypeError
		truth(t, errors.As(err, &ue), "%s: %v", typ, err)
		eq(t, "provider type "+typ+" is not supported; use local_service or s3", err.Error())
	}
}

func TestOpenRefusesBadSections(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	noErr(t, os.WriteFile(ca, []byte("not a certificate"), 0o644))
	s3 := func(kv ...string) map[string]string {
		m := map[string]string{"type": "s3", "args": "http://127.0.0.1:9000 bucket", "access_key": "a", "secret_key": "s"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<delete>" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	t.Setenv(EnvAccessKey, "")
	t.Setenv(EnvSecretKey, "")
	for name, section := range map[string]map[string]string{
		"no type":               {"args": "/x"},
		"local without args":    {"type": "local_service"},
		"local with two args":   {"type": "local_service", "args": "/x /y"},
		"local unknown key":     {"type": "local_service", "args": "/x", "bucket": "b"},
		"s3 one arg":            s3("args", "http://127.0.0.1:9000"),
		"s3 no scheme":          s3("args", "127.0.0.1:9000 bucket"),
		"s3 ftp":                s3("args", "ftp://127.0.0.1:9000 bucket"),
		"s3 path in endpoint":   s3("args", "http://127.0.0.1:9000/x bucket"),
		"s3 no credentials":     s3("access_key", "<delete>", "secret_key", "<delete>"),
		"s3 half credentials":   s3("secret_key", "<delete>"),
		"s3 unknown key":        s3("endpoint", "x"),
		"s3 part size small":    s3("part_size_mb", "4"),
		"s3 part size garbage":  s3("part_size_mb", "lots"),
		"s3 bucket_lookup":      s3("bucket_lookup", "sideways"),
		"s3 no parts in flight": s3("parts_in_flight", "0"),
		"s3 parts in flight":    s3("parts_in_flight", "17"),
		"s3 ca_file on http":    s3("ca_file", ca),
		"s3 ca_file missing":    s3("args", "https://h bucket", "ca_file", ca+".nope"),
		"s3 ca_file not PEM":    s3("args", "https://h bucket", "ca_file", ca),
		"s3 bad prefix":         s3("prefix", "a/../.."),
	} {
		_, err := Open("x", section)
		errIs(t, err, ErrInvalid, name)
		truth(t, strings.Contains(err.Error(), "[block_service.x]"), "%s: the section is named: %v", name, err)
	}
}

func TestOpenS3CredentialsFromEnv(t *testing.T) {
	t.Setenv(EnvAccessKey, "from-env")
	t.Setenv(EnvSecretKey, "secret-from-env")
	s, err := Open("x", map[string]string{"type": "s3", "args": "http://127.0.0.1:9000 bucket", "prefix": "/a/b/"})
	noErr(t, err)
	svc := s.(*service).p.(*s3svc)
	v, err := svc.client.GetCreds()
	noErr(t, err)
	eq(t, "from-env", v.AccessKeyID)
	eq(t, "secret-from-env", v.SecretAccessKey)
	eq(t, "a/b/", svc.prefix)
	eq(t, "a/b/c/d", svc.key("c/d"))
}

// TestOpenS3CAFile: with ca_file the client trusts that CA (and only then): against a TLS
// server it reaches the server, which answers 404, so Read says not found; without, the
// handshake fails.
func TestOpenS3CAFile(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	noErr(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	section := map[string]string{"type": "s3", "args": srv.URL + " bucket", "access_key": "a", "secret_key": "s",
		"region": "us-east-1", "bucket_lookup": "path"}

	without, err := Open("tls", section)
	noErr(t, err)
	_, err = without.Read(t.Context(), "some/file", nil)
	var unknownCA x509.UnknownAuthorityError
	truth(t, errors.As(err, &unknownCA), "an untrusted server's certificate is refused: %v", err)

	section["ca_file"] = ca
	with, err := Open("tls", section)
	noErr(t, err)
	_, err = with.Read(t.Context(), "some/file", nil)
	errIs(t, err, ErrNotFound)
}

func TestFromConfig(t *testing.T) {
	root := t.TempDir()
	r := config.NewRegistry()
	DefineConfig(r)
	file := `
[block_service.local_service]
type = local_service
args = ` + root + `
[block_service.hdfs_service]
type = hdfs_service
args = 127.0.0.1:8020 /pegasus
[block_service.s3]
type = s3
args = https://s3.example.com bucket
access_key = a
secret_key = s
prefix = clusters/c1
`
	noErr(t, r.Load(strings.NewReader(file), "test.ini"))
	p, err := FromConfig(r)
	noErr(t, err)
	eq(t, []string{"local_service", "s3"}, p.Names())
	s, err := p.Get("local_service")
	noErr(t, err)
	write(t, s, "a", []byte("x"))
	_, err = os.Stat(filepath.Join(root, ".a.meta"))
	noErr(t, err, "the section's root is used")
	_, err = p.Get("s3")
	noErr(t, err)
	_, err = p.Get("hdfs_service")
	eq(t, "provider type hdfs_service is not supported; use local_service or s3", err.Error())
	_, err = p.Get("nope")
	errIs(t, err, ErrUnknownProvider)

	// A malformed section fails the whole configuration.
	_, err = NewProviders(map[string]map[string]string{"bad": {"type": "s3"}})
	errIs(t, err, ErrInvalid)
}
