package testcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/acl"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/wire"
)

// TestACLWithClientCertificates: with TLS client certificates required and ACLs on, a
// certificate's common name is the user the ACLs check, as a Kerberos principal is: the
// super user (the helpers' ClientUser) creates tables; carol, whose certificate is of the
// same CA, cannot, gets ERR_ACL_DENY on a table whose allowed_users leave her out, and
// reads and writes another.
func TestACLWithClientCertificates(t *testing.T) {
	tl := NewTLS(t)
	tl.Mandatory = true
	tl.Server.ClientAuth = tls.RequireAndVerifyClientCert
	aclOn := func(reg *config.Registry) {
		for k, v := range map[string]string{"enable_acl": "true", "super_users": ClientUser} {
			if err := reg.Set(k, v); err != nil {
				t.Fatalf("set %s: %v", k, err)
			}
		}
	}
	c := Start(t, Options{Metas: 1, Replicas: 3, TLS: tl,
		Meta:    func(cfg *meta.Config) { cfg.Settings = meta.NewSettings(); aclOn(cfg.Settings.Registry()) },
		Replica: func(cfg *replica.Config) { cfg.Settings = replica.NewSettings(); aclOn(cfg.Settings.Registry()) },
	})
	c.CreateTable(t, "open", 2)
	c.CreateTable(t, "guarded", 2)
	ctx := t.Context()
	ad, err := admin.New(admin.Config{MetaServers: c.MetaAddrs(), TLS: tl.Client, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	if err := ad.SetAppEnvs(ctx, "guarded", map[string]string{acl.EnvAllowedUsers: ClientUser}); err != nil {
		t.Fatalf("the super user sets allowed_users: %v", err)
	}
	c.WaitEnv(t, "guarded", acl.EnvAllowedUsers, ClientUser)

	carolCert, err := tl.CA.Client("carol")
	if err != nil {
		t.Fatal(err)
	}
	carolTLS := &tls.Config{RootCAs: tl.CA.Pool(), Certificates: []tls.Certificate{carolCert.TLS}}
	carolAdmin, err := admin.New(admin.Config{MetaServers: c.MetaAddrs(), TLS: carolTLS, Timeout: 5 * time.Second, MaxRounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer carolAdmin.Close()
	if _, err := carolAdmin.CreateTable(ctx, "carols", 1, 1, nil, 0); !errors.Is(err, wire.ErrACLDeny) {
		t.Fatalf("carol creates a table: %v, want ERR_ACL_DENY", err)
	}
	carol, err := pegasus.New(pegasus.Config{MetaServers: c.MetaAddrs(), TLS: carolTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	open, err := carol.OpenTable(ctx, "open")
	if err != nil {
		t.Fatal(err)
	}
	if err := open.Set(ctx, []byte("carol"), []byte("s"), []byte("v")); err != nil {
		t.Fatalf("carol writes open: %v", err)
	}
	guarded, err := carol.OpenTable(ctx, "guarded")
	if err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := guarded.Get(gctx, []byte("carol"), []byte("s")); !errors.Is(err, pegasus.ErrACLDeny) {
		t.Fatalf("carol reads guarded: %v, want ERR_ACL_DENY", err)
	}
	if err := c.OpenTable(t, "guarded").Set(ctx, []byte("h"), []byte("s"), []byte("v")); err != nil {
		t.Fatalf("the super user writes guarded: %v", err)
	}
}
