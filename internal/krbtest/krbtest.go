// Package krbtest runs a real MIT Kerberos KDC for tests: a realm of its own in the test's
// temporary directory (kdb5_util create, kadmin.local addprinc and ktadd), and krb5kdc
// listening on a free 127.0.0.1 port, stopped when the test ends.
//
//	kdc := krbtest.Start(t)
//	kt := kdc.AddService(t, "pegasus/127.0.0.1")  // a keytab file for a server
//	alice := kdc.AddUser(t, "alice")              // a keytab file for a client
//	_ = kdc.Krb5Conf                              // krb5.conf naming the KDC
//
// Without the KDC's binaries (Debian: krb5-kdc, krb5-admin-server, krb5-user) the test is
// skipped, unless CI=true: there they must be installed (.ci/run does), and the test fails.
package krbtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/poll"
)

// Realm is the realm of every KDC this package starts.
const Realm = "GOPEGASUS.TEST"

// KDC is a running krb5kdc with its realm's database.
type KDC struct {
	// Dir holds the database, the configuration files and the keytabs made.
	Dir string
	// Krb5Conf is the krb5.conf file for the realm's clients (default_realm = Realm).
	Krb5Conf string
	// Addr is the KDC's "127.0.0.1:port", on UDP and TCP.
	Addr string
	env  []string
}

// tool finds a KDC binary, in PATH or in /usr/sbin where Debian puts them.
func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// Start makes a realm and runs its KDC until the test ends.
func Start(t testing.TB) *KDC {
	t.Helper()
	for _, n := range []string{"krb5kdc", "kdb5_util", "kadmin.local", "kinit"} {
		if tool(n) == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("krbtest: %s not found; CI must install krb5-kdc, krb5-admin-server and krb5-user (.ci/run)", n)
			}
			t.Skipf("krbtest: %s not found: install Debian's krb5-kdc, krb5-admin-server and krb5-user to run this test", n)
		}
	}
	dir := t.TempDir()
	var lastErr error
	for range 5 { // the port is free when picked, another process may take it before krb5kdc
		k, err := start(t, dir)
		if err == nil {
			return k
		}
		lastErr = err
		dir = t.TempDir()
	}
	t.Fatalf("krbtest: start the KDC: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func start(t testing.TB, dir string) (*KDC, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	k := &KDC{Dir: dir, Krb5Conf: filepath.Join(dir, "krb5.conf"), Addr: addr}
	kdcConf := filepath.Join(dir, "kdc.conf")
	files := map[string]string{
		k.Krb5Conf: fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false
	udp_preference_limit = 1
	default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	ticket_lifetime = 1h
	forwardable = false

[realms]
	%[1]s = {
		kdc = %[2]s
		admin_server = %[2]s
	}
`, Realm, addr),
		kdcConf: fmt.Sprintf(`[kdcdefaults]
	kdc_listen = %[2]s
	kdc_tcp_listen = %[2]s

[realms]
	%[1]s = {
		database_name = %[3]s/principal
		key_stash_file = %[3]s/stash
		acl_file = %[3]s/kadm5.acl
		max_life = 1h
		max_renewable_life = 0
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
		kdc_listen = %[2]s
		kdc_tcp_listen = %[2]s
	}

[logging]
	kdc = FILE:%[3]s/kdc.log
`, Realm, addr, dir),
		filepath.Join(dir, "kadm5.acl"): "",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			return nil, err
		}
	}
	k.env = append(os.Environ(), "KRB5_CONFIG="+k.Krb5Conf, "KRB5_KDC_PROFILE="+kdcConf, "KRB5CCNAME=FILE:"+filepath.Join(dir, "ccache-unused"))
	if _, err := k.run("kdb5_util", "-r", Realm, "create", "-s", "-P", "krbtest-master-password"); err != nil {
		return nil, err
	}
	cmd := exec.Command(tool("krb5kdc"), "-n", "-r", Realm)
	cmd.Env = k.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("krb5kdc: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = poll.Wait(ctx, func(context.Context) (bool, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("krb5kdc exited: %v: %s", err, out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, nil
		}
		_ = c.Close()
		return true, nil
	})
	if err != nil {
		stop()
		return nil, err
	}
	t.Cleanup(stop)
	return k, nil
}

// run runs a KDC tool with the realm's configuration.
func (k *KDC) run(name string, args ...string) (string, error) {
	cmd := exec.Command(tool(name), args...)
	cmd.Env = k.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// kadmin runs one kadmin.local query.
func (k *KDC) kadmin(t testing.TB, query string) {
	t.Helper()
	if _, err := k.run("kadmin.local", "-r", Realm, "-q", query); err != nil {
		t.Fatalf("krbtest: %v", err)
	}
}

// add creates principal name (random keys) and returns a keytab file holding its keys.
func (k *KDC) add(t testing.TB, name string) string {
	t.Helper()
	k.kadmin(t, "addprinc -randkey "+name)
	kt := filepath.Join(k.Dir, strings.ReplaceAll(name, "/", "_")+".keytab")
	k.kadmin(t, "ktadd -norandkey -k "+kt+" "+name)
	return kt
}

// AddService creates the service principal name ("pegasus/127.0.0.1") and returns its
// keytab file.
func (k *KDC) AddService(t testing.TB, name string) string { return k.add(t, name) }

// AddUser creates the user principal name ("alice") and returns its keytab file.
func (k *KDC) AddUser(t testing.TB, name string) string { return k.add(t, name) }

// Kinit gets a ticket-granting ticket for name with its keytab into a new credential cache
// file, as `kinit -k -t` does, and returns the cache's path.
func (k *KDC) Kinit(t testing.TB, name, keytab string) string {
	t.Helper()
	cc := filepath.Join(k.Dir, strings.ReplaceAll(name, "/", "_")+".ccache")
	if _, err := k.run("kinit", "-k", "-t", keytab, "-c", "FILE:"+cc, name); err != nil {
		t.Fatalf("krbtest: %v", err)
	}
	return cc
}
