package testcluster

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/acl"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/krbtest"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/sasl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// kerberized is a cluster with Kerberos client authentication mandatory and ACLs on, its
// realm's KDC, and the users' keytabs: alice is the super user, bob and carol are not.
type kerberized struct {
	c      *Cluster
	kdc    *krbtest.KDC
	keytab map[string]string
	token  string
}

// securitySettings sets [security] on a server's registry.
func securitySettings(t *testing.T, reg *config.Registry, kt, tokenFile string) {
	t.Helper()
	for k, v := range map[string]string{
		"enable_auth": "true", "mandatory_auth": "true", "krb5_keytab": kt,
		"krb5_principal": "pegasus/127.0.0.1@" + krbtest.Realm,
		"enable_acl":     "true", "super_users": "alice", "super_user_token_file": tokenFile,
	} {
		if err := reg.Set(k, v); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
}

func startKerberized(t *testing.T) *kerberized {
	t.Helper()
	kdc := krbtest.Start(t)
	svc := kdc.AddService(t, "pegasus/127.0.0.1")
	k := &kerberized{kdc: kdc, keytab: map[string]string{}, token: "super-user-token-0123456789abcdef"}
	for _, u := range []string{"alice", "bob", "carol"} {
		k.keytab[u] = kdc.AddUser(t, u)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(k.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, err := sasl.NewClient(k.krb("alice"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(alice.Close)
	k.c = Start(t, Options{Metas: 1, Replicas: 3, ClientAuth: alice,
		Meta: func(cfg *meta.Config) {
			cfg.Settings = meta.NewSettings()
			securitySettings(t, cfg.Settings.Registry(), svc, tokenFile)
		},
		Replica: func(cfg *replica.Config) {
			cfg.Settings = replica.NewSettings()
			securitySettings(t, cfg.Settings.Registry(), svc, tokenFile)
		},
	})
	return k
}

// krb is user's Kerberos configuration.
func (k *kerberized) krb(user string) sasl.ClientConfig {
	return sasl.ClientConfig{Principal: user + "@" + krbtest.Realm, Keytab: k.keytab[user], Krb5Config: k.kdc.Krb5Conf}
}

func (k *kerberized) client(t *testing.T, user string) pegasus.Client {
	t.Helper()
	cfg := pegasus.Config{MetaServers: k.c.MetaAddrs(), DefaultTimeout: 5 * time.Second}
	if user != "" {
		krb := k.krb(user)
		cfg.Kerberos = &krb
	}
	cl, err := pegasus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func (k *kerberized) admin(t *testing.T, user string) admin.Client {
	t.Helper()
	krb := k.krb(user)
	a, err := admin.New(admin.Config{MetaServers: k.c.MetaAddrs(), Timeout: 5 * time.Second, MaxRounds: 1, Kerberos: &krb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// TestKerberosMandatoryAuthAndACL is issue 19's acceptance for clients, against a real MIT
// KDC: with mandatory_auth a connection without a ticket gets ERR_UNAUTHENTICATED for data
// and DDL RPCs; a client with a ticket works; a user not in a table's allowed_users gets
// ERR_ACL_DENY on that table and works on another; a non-super user cannot create or drop
// tables, the super user can; the mutating HTTP endpoints and pprof need the super user
// token.
func TestKerberosMandatoryAuthAndACL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a KDC and a cluster")
	}
	k := startKerberized(t)
	ctx := t.Context()
	openID := k.c.CreateTable(t, "open", 4)
	k.c.CreateTable(t, "guarded", 4)
	if err := k.admin(t, "alice").SetAppEnvs(ctx, "guarded", map[string]string{acl.EnvAllowedUsers: "bob,dave"}); err != nil {
		t.Fatalf("alice sets allowed_users: %v", err)
	}

	t.Run("no ticket: no data, no DDL", func(t *testing.T) {
		// A data RPC straight to each replica server, as an official client would send it.
		for _, addr := range k.c.ReplicaAddrs() {
			conn := rpc.NewConn(addr, rpc.ConnConfig{})
			hk := []byte("h")
			h := wire.Header{AppID: openID, PartitionIndex: 0, ThreadHash: wire.ThreadHash(openID, 0), PartitionHash: key.Hash(hk)}
			args := idl.Blob(key.Encode(hk, []byte("s")))
			var rr idl.ReadResponse
			err := conn.Call(ctx, h, idl.RPCGet, &args, &rr)
			_ = conn.Close()
			if !errors.Is(err, wire.ErrUnauthenticated) {
				t.Fatalf("anonymous get at %s: %v, want ERR_UNAUTHENTICATED", addr, err)
			}
		}
		var resp idl.CreateAppResponse
		conn := rpc.NewConn(k.c.MetaAddrs()[0], rpc.ConnConfig{})
		defer conn.Close()
		err := conn.Call(ctx, wire.Header{}, idl.RPCCreateApp, &idl.CreateAppRequest{AppName: "anon", Options: idl.CreateAppOptions{
			PartitionCount: 1, ReplicaCount: 1, AppType: "pegasus", IsStateful: true, Envs: map[string]string{}}}, &resp)
		if !errors.Is(err, wire.ErrUnauthenticated) {
			t.Fatalf("anonymous create_app: %v, want ERR_UNAUTHENTICATED", err)
		}
		// Our client without credentials cannot even find the table.
		octx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := k.client(t, "").OpenTable(octx, "open"); err == nil {
			t.Fatal("a client without a ticket opened a table")
		}
	})

	t.Run("tickets and allowed_users", func(t *testing.T) {
		for _, user := range []string{"alice", "bob", "carol"} {
			cl := k.client(t, user)
			open, err := cl.OpenTable(ctx, "open")
			if err != nil {
				t.Fatalf("%s opens open: %v", user, err)
			}
			if err := open.Set(ctx, []byte(user), []byte("s"), []byte("v")); err != nil {
				t.Fatalf("%s sets on open: %v", user, err)
			}
			if v, err := open.Get(ctx, []byte(user), []byte("s")); err != nil || string(v) != "v" {
				t.Fatalf("%s gets on open: %q, %v", user, v, err)
			}
			guarded, err := cl.OpenTable(ctx, "guarded")
			if err != nil {
				t.Fatalf("%s opens guarded: %v", user, err)
			}
			err = guarded.Set(ctx, []byte(user), []byte("s"), []byte("v"))
			if user == "carol" {
				// The env reaches the replica servers with their next config sync.
				poll.Until(t, "carol denied on guarded", func() bool {
					err = guarded.Set(ctx, []byte(user), []byte("s"), []byte("v"))
					return errors.Is(err, pegasus.ErrACLDeny)
				})
				if _, err := guarded.Get(ctx, []byte("bob"), []byte("s")); !errors.Is(err, pegasus.ErrACLDeny) {
					t.Fatalf("carol gets on guarded: %v, want ERR_ACL_DENY", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s sets on guarded: %v", user, err)
			}
		}
	})

	t.Run("only the super user creates and drops tables", func(t *testing.T) {
		bob := k.admin(t, "bob")
		if _, err := bob.ListTables(ctx); err != nil {
			t.Fatalf("bob lists the tables (allow list): %v", err)
		}
		if _, err := bob.CreateTable(ctx, "bobs", 1, 1, nil, 10); !errors.Is(err, wire.ErrACLDeny) {
			t.Fatalf("bob creates a table: %v, want ERR_ACL_DENY", err)
		}
		if err := bob.DropTable(ctx, "open", 0); !errors.Is(err, wire.ErrACLDeny) {
			t.Fatalf("bob drops a table: %v, want ERR_ACL_DENY", err)
		}
		if err := bob.SetAppEnvs(ctx, "guarded", map[string]string{acl.EnvAllowedUsers: "bob,carol"}); !errors.Is(err, wire.ErrACLDeny) {
			t.Fatalf("bob changes allowed_users: %v, want ERR_ACL_DENY", err)
		}
		alice := k.admin(t, "alice")
		if _, err := alice.CreateTable(ctx, "alices", 1, 1, nil, 10); err != nil {
			t.Fatalf("alice creates a table: %v", err)
		}
		if err := alice.DropTable(ctx, "alices", 0); err != nil {
			t.Fatalf("alice drops a table: %v", err)
		}
	})

	t.Run("mutating HTTP and pprof need the super user token", func(t *testing.T) {
		for _, addr := range append(k.c.MetaAddrs(), k.c.ReplicaAddrs()[0]) {
			for _, path := range []string{"/updateConfig?mandatory_auth=true", "//pprof/cmdline", "/meta/app/usage_scenario"} {
				if strings.HasPrefix(path, "/meta") && addr != k.c.MetaAddrs()[0] {
					continue
				}
				for _, token := range []string{"", "wrong-token-0123456789abcdef", k.token} {
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
					if err != nil {
						t.Fatal(err)
					}
					if token != "" {
						req.Header.Set("Authorization", "Bearer "+token)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					if denied := resp.StatusCode == http.StatusForbidden; denied != (token != k.token) {
						t.Fatalf("%s%s with token %q: %d %s", addr, path, token, resp.StatusCode, body)
					}
				}
			}
			// Reads stay open.
			resp, err := http.Get("http://" + addr + "/version")
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s/version: %d", addr, resp.StatusCode)
			}
		}
	})
}
