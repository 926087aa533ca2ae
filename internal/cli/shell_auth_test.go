package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/krbtest"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/sasl"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// TestShellKerberos runs the shell against a cluster with mandatory Kerberos
// authentication and ACLs, with a real KDC: without credentials it gets nothing; bob (a
// keytab) reads and writes but may not create tables; alice (a kinit credential cache), the
// super user, creates and drops one.
func TestShellKerberos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a KDC and a cluster")
	}
	kdc := krbtest.Start(t)
	svc := kdc.AddService(t, "pegasus/127.0.0.1")
	aliceKT, bobKT := kdc.AddUser(t, "alice"), kdc.AddUser(t, "bob")
	set := func(reg *config.Registry) {
		for k, v := range map[string]string{"enable_auth": "true", "mandatory_auth": "true", "krb5_keytab": svc,
			"krb5_principal": "pegasus/127.0.0.1@" + krbtest.Realm, "enable_acl": "true", "super_users": "alice"} {
			if err := reg.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	helper, err := sasl.NewClient(sasl.ClientConfig{Principal: "alice", Keytab: aliceKT, Krb5Config: kdc.Krb5Conf})
	if err != nil {
		t.Fatal(err)
	}
	defer helper.Close()
	c := testcluster.Start(t, testcluster.Options{Metas: 1, Replicas: 1, ClientAuth: helper,
		Meta:    func(cfg *meta.Config) { cfg.Settings = meta.NewSettings(); set(cfg.Settings.Registry()) },
		Replica: func(cfg *replica.Config) { cfg.Settings = replica.NewSettings(); set(cfg.Settings.Registry()) },
	})
	c.CreateTable(t, "temp", 2)
	metas := c.MetaAddrs()[0]
	run := func(line string, creds ...string) (string, string, error) {
		t.Helper()
		args := append([]string{"--metas", metas, "--timeout", "3s", "-c", line}, creds...)
		return shellRun(t, "", args...)
	}
	bob := []string{"--krb5-principal", "bob@" + krbtest.Realm, "--krb5-keytab", bobKT, "--krb5-config", kdc.Krb5Conf}
	alice := []string{"--krb5-ccache", kdc.Kinit(t, "alice", aliceKT), "--krb5-config", kdc.Krb5Conf}

	if _, _, err := run("ls", "--krb5-principal", "bob"); !errors.Is(err, errUsage) {
		t.Fatalf("--krb5-principal without a keytab: %v, want a usage error", err)
	}
	if out, errOut, err := run("ls"); err == nil || !strings.Contains(err.Error()+errOut, "ERR_UNAUTHENTICATED") {
		t.Fatalf("ls without credentials: %v %q %q, want ERR_UNAUTHENTICATED", err, out, errOut)
	}
	if out, errOut, err := run("use temp; set h s v; get h s", bob...); err != nil || !strings.Contains(out, "v") {
		t.Fatalf("bob's set and get: %v %q %q", err, out, errOut)
	}
	if out, errOut, err := run("create bobs -p 1 -r 1", bob...); err == nil || !strings.Contains(err.Error()+errOut+out, "ERR_ACL_DENY") {
		t.Fatalf("bob's create: %v %q %q, want ERR_ACL_DENY", err, out, errOut)
	}
	if out, errOut, err := run("create alices -p 1 -r 1; drop alices", alice...); err != nil {
		t.Fatalf("alice's create and drop: %v %q %q", err, out, errOut)
	}
}

// TestServerAuthFlags checks that the auth and ACL flags of pegasus meta and pegasus
// replica set their [security] settings, over a config file's.
func TestServerAuthFlags(t *testing.T) {
	for _, reg := range []*config.Registry{meta.NewSettings().Registry(), replica.NewSettings().Registry()} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		apply := addAuthFlags(fs)
		if err := reg.Load(strings.NewReader("[security]\nsuper_users = carol\nenable_acl = false\n"), "test.ini"); err != nil {
			t.Fatal(err)
		}
		if err := fs.Parse([]string{"--enable-auth", "--mandatory-auth", "--krb5-keytab", "/k", "--krb5-principal", "pegasus/h@R",
			"--enable-acl", "--super-users", "alice,bob"}); err != nil {
			t.Fatal(err)
		}
		if err := apply(reg); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"enable_auth": "true", "mandatory_auth": "true", "krb5_keytab": "/k",
			"krb5_principal": "pegasus/h@R", "enable_acl": "true", "super_users": "alice,bob", "meta_acl_rpc_allow_list": ""}
		for k, v := range want {
			if in, ok := reg.Lookup(k); !ok || in.Value != v {
				t.Errorf("%s = %q, want %q", k, in.Value, v)
			}
		}
	}
}
