package cli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/certs"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// startOnebox runs `pegasus onebox` with args until the test ends and returns the lines
// it printed up to the console's address.
func startOnebox(t testing.TB, args ...string) []string {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"onebox"}, args...), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("onebox exited %d", code)
		}
	})
	sc := bufio.NewScanner(pr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		t.Log(sc.Text())
		if strings.HasPrefix(sc.Text(), "onebox: web console at ") {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return lines
		}
	}
	t.Fatalf("onebox did not become ready: %q", lines)
	return nil
}

// The onebox with --tls --mandatory-tls: its certificates are made in <data>/tls, the
// shell and bench work with --cacert --cert --key, https:// works, plaintext is refused.
func TestOneboxTLSShellAndBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a onebox")
	}
	dir := t.TempDir()
	lines := startOnebox(t, "--data", dir, "--metas", "1", "--replicas", "1", "--meta-port", "0", "--replica-port", "0", "--tls", "--mandatory-tls")
	var metaAddr string
	for _, l := range lines {
		if after, ok := strings.CutPrefix(l, "onebox: metas "); ok {
			metaAddr, _, _ = strings.Cut(after, " ")
			metaAddr, _, _ = strings.Cut(metaAddr, ",")
		}
	}
	f := certs.FilesIn(filepath.Join(dir, "tls"))
	if !strings.Contains(strings.Join(lines, "\n"), "--cacert "+f.CA+" --cert "+f.ClientCert+" --key "+f.ClientKey) {
		t.Fatalf("the onebox did not print how to connect: %q", lines)
	}
	if st, err := os.Stat(f.ServerKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("server key: %v, %v", st, err)
	}
	if last := lines[len(lines)-1]; last != "onebox: web console at https://"+metaAddr+"/console" {
		t.Fatalf("console line %q", last)
	}
	tlsArgs := []string{"--metas", metaAddr, "--cacert", f.CA, "--cert", f.ClientCert, "--key", f.ClientKey}

	out, errOut, err := shellRun(t, "", append(tlsArgs, "-c", "use temp; set h s v; get h s")...)
	if err != nil || !strings.Contains(out, "v") {
		t.Fatalf("shell over TLS: %q %q %v", out, errOut, err)
	}
	if out, _, err := shellRun(t, "", append(tlsArgs, "-c", "remote_command server-info")...); err != nil || !strings.Contains(out, "meta") {
		t.Fatalf("remote_command over TLS: %q %v", out, err)
	}
	if out, _, err := shellRun(t, "", "--metas", metaAddr, "--timeout", "2s", "-c", "ls"); err == nil {
		t.Fatalf("plaintext shell served under --mandatory-tls: %q", out)
	}
	var bout, berr strings.Builder
	if err := runBench(t.Context(), append(tlsArgs, "--workload", "C", "--load", "--records", "200", "--ops", "400", "--threads", "2"), &bout, &berr); err != nil {
		t.Fatalf("bench over TLS: %v\n%s", err, berr.String())
	}
	cfg, err := certs.ClientConfig(f.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: nil}}
	resp, err := hc.Get("https://" + metaAddr + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("https /version: %d", resp.StatusCode)
	}
}

// pegasus meta with --cert-file, --key-file, --trusted-ca-file, --client-cert-auth and
// --mandatory-tls serves a client with a certificate of that CA, and refuses the flags'
// inconsistent combinations.
func TestMetaTLSFlags(t *testing.T) {
	dir := t.TempDir()
	f, _, err := certs.EnsureFiles(filepath.Join(dir, "tls"), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, rpc.GenerateSecret(), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--data", filepath.Join(dir, "m"), "--listen", "127.0.0.1:0"}
	for name, args := range map[string][]string{
		"mandatory without a certificate": {"--cluster-secret-file", secretFile, "--mandatory-tls"},
		"client-cert-auth without a CA":   {"--cluster-secret-file", secretFile, "--cert-file", f.ServerCert, "--key-file", f.ServerKey, "--client-cert-auth"},
		"mandatory without a secret":      {"--insecure", "--cert-file", f.ServerCert, "--key-file", f.ServerKey, "--mandatory-tls"},
		"a certificate without its key":   {"--cluster-secret-file", secretFile, "--cert-file", f.ServerCert},
		"a dup CA without --dup-tls":      {"--cluster-secret-file", secretFile, "--dup-ca-file", f.CA},
		"a dup certificate without a key": {"--cluster-secret-file", secretFile, "--dup-tls", "--dup-cert-file", f.ClientCert},
		"a dup CA that is no PEM":         {"--cluster-secret-file", secretFile, "--dup-tls", "--dup-ca-file", secretFile},
	} {
		if err := runMeta(t.Context(), append(base, args...), io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("meta, %s: %v, want a usage error", name, err)
		}
		rargs := append([]string{"--data", filepath.Join(dir, "r"), "--listen", "127.0.0.1:0", "--metas", "127.0.0.1:1"}, args...)
		if err := runReplica(t.Context(), rargs, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("replica, %s: %v, want a usage error", name, err)
		}
	}
	// The [security] settings of a config file count as the flags do.
	cfgFile := filepath.Join(dir, "pegasus.ini")
	if err := os.WriteFile(cfgFile, []byte("[security]\nmandatory_tls = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = runMeta(t.Context(), append(base, "--cluster-secret-file", secretFile, "--config", cfgFile), io.Discard, io.Discard)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "mandatory TLS") {
		t.Errorf("meta with mandatory_tls in its config file and no certificate: %v", err)
	}
	if err := os.WriteFile(cfgFile, []byte("[replication]\ndup_cert_file = "+f.ClientCert+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = runMeta(t.Context(), append(base, "--cluster-secret-file", secretFile, "--config", cfgFile), io.Discard, io.Discard)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "dup_tls") {
		t.Errorf("meta with dup_cert_file in its config file and no dup_tls: %v", err)
	}

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- runMeta(ctx, append(base, "--cluster-secret-file", secretFile, "--cert-file", f.ServerCert, "--key-file", f.ServerKey,
			"--trusted-ca-file", f.CA, "--client-cert-auth", "--mandatory-tls",
			"--dup-tls", "--dup-ca-file", f.CA, "--dup-cert-file", f.ClientCert, "--dup-key-file", f.ClientKey), pw, io.Discard)
		pw.Close()
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("meta: %v", err)
		}
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, _, _ := strings.Cut(strings.TrimPrefix(line, "meta server listening on "), ",")
	ctxCall, cancelCall := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancelCall()
	withCert, err := certs.ClientConfig(f.CA, f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	noCert, err := certs.ClientConfig(f.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := admin.New(admin.Config{MetaServers: []string{addr}, TLS: withCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	if _, err := ok.ListTables(ctxCall); err != nil {
		t.Fatalf("a client with a certificate of the trusted CA: %v", err)
	}
	refused, err := admin.New(admin.Config{MetaServers: []string{addr}, TLS: noCert, MaxRounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	c2, cancel2 := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel2()
	if _, err := refused.ListTables(c2); err == nil {
		t.Fatal("a client without a certificate was served under --client-cert-auth")
	}
}
