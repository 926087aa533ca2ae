package admin_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

func TestIntegrationAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
	adm, err := admin.New(admin.Config{MetaServers: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := t.Context()

	id, err := adm.CreateTable(ctx, "t1", 4, 1, map[string]string{"default_ttl": "0"}, 30)
	if err != nil || id <= 0 {
		t.Fatalf("CreateTable = %d, %v", id, err)
	}
	cfg, err := adm.QueryConfig(ctx, "t1")
	if err != nil || cfg.AppID != id || cfg.PartitionCount != 4 || len(cfg.Partitions) != 4 {
		t.Fatalf("QueryConfig = %+v, %v", cfg, err)
	}
	for i, p := range cfg.Partitions {
		if p.Primary == "" || p.Index != int32(i) || p.Ballot < 1 {
			t.Errorf("partition %d: %+v", i, p)
		}
	}
	// The data client can use it at once.
	cl := pegasus.NewClient(pegasus.Config{MetaServers: c.MetaAddrs()})
	defer cl.Close()
	tb, err := cl.OpenTable(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Set(ctx, []byte("h"), []byte("s"), []byte("v")); err != nil {
		t.Fatal(err)
	}

	tables, err := adm.ListTables(ctx)
	if err != nil || !slices.ContainsFunc(tables, func(ti *admin.TableInfo) bool { return ti.Name == "t1" && ti.AppID == id }) {
		t.Fatalf("ListTables = %v, %v", tables, err)
	}
	nodes, err := adm.ListNodes(ctx)
	if err != nil || len(nodes) != 3 {
		t.Fatalf("ListNodes = %v, %v", nodes, err)
	}

	if err := adm.SetAppEnvs(ctx, "t1", map[string]string{"a.x": "1", "a.y": "2", "b": "3"}); err != nil {
		t.Fatal(err)
	}
	envs, err := adm.GetAppEnvs(ctx, "t1")
	if err != nil || envs["a.x"] != "1" || envs["b"] != "3" {
		t.Fatalf("GetAppEnvs = %v, %v", envs, err)
	}
	if err := adm.DelAppEnvs(ctx, "t1", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if err := adm.ClearAppEnvs(ctx, "t1", "a"); err != nil {
		t.Fatal(err)
	}
	envs, err = adm.GetAppEnvs(ctx, "t1")
	if err != nil || envs["a.x"] != "" || envs["b"] != "" {
		t.Fatalf("GetAppEnvs after del and clear = %v, %v", envs, err)
	}

	if err := adm.DropTable(ctx, "t1", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.QueryConfig(ctx, "t1"); !errors.Is(err, pegasus.ErrObjectNotFound) {
		t.Fatalf("QueryConfig of a dropped table = %v", err)
	}
	if err := adm.DropTable(ctx, "t1", 0); err != nil {
		t.Fatalf("dropping a missing table: %v", err)
	}
}

// TestIntegrationAdminThroughAnyMeta gives the admin client one meta of three: the followers'
// refusals lead it to the leader, whose answers it gets.
func TestIntegrationAdminThroughAnyMeta(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 1})
	leader := c.MetaLeader(t)
	for i, addr := range c.MetaAddrs() {
		adm, err := admin.New(admin.Config{MetaServers: []string{addr}})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		info, err := adm.ClusterInfo(ctx)
		if err != nil {
			t.Fatalf("ClusterInfo through %s: %v", addr, err)
		}
		if !slices.Contains(info, admin.InfoItem{Key: "primary_meta_server", Value: leader}) {
			t.Errorf("ClusterInfo through %s = %v, want primary %s", addr, info, leader)
		}
		name := fmt.Sprintf("t%d", i)
		if _, err := adm.CreateTable(ctx, name, 2, 1, nil, 30); err != nil {
			t.Fatalf("CreateTable through %s: %v", addr, err)
		}
		tables, err := adm.ListTables(ctx)
		if err != nil || !slices.ContainsFunc(tables, func(ti *admin.TableInfo) bool { return ti.Name == name }) {
			t.Fatalf("ListTables through %s = %v, %v", addr, tables, err)
		}
		_ = adm.Close()
	}
}
