package meta

import (
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
)

// TestThrottlingEnvsValidated: every throttling env form is accepted when well formed and
// refused with ERR_INVALID_PARAMETERS and a hint naming the problem otherwise; a refused
// update changes nothing.
func TestThrottlingEnvsValidated(t *testing.T) {
	tm := startMeta(t, Config{})
	tm.syncAll(nodeAddrs(1))
	tm.create("t", 2, 1)
	set := func(k, v string) *idl.UpdateAppEnvResponse {
		return tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpSet, Keys: idl.Some([]string{k}), Values: idl.Some([]string{v})})
	}
	for _, kv := range [][2]string{
		{"replica.write_throttling", "100*reject*200"},
		{"replica.write_throttling", "20K*delay*100,100K*reject*200"},
		{"replica.write_throttling_by_size", "1M*delay*100"},
		{"replica.read_throttling", "1000*delay*50,2000*reject*100"},
		{"replica.read_throttling_by_size", "200K"},
		{"replica.read_throttling_by_size", "5M*reject*100"},
		{"replica.deny_client_request", "timeout*write"},
		{"replica.deny_client_request", "reconfig*all"},
	} {
		if r := set(kv[0], kv[1]); r.Err != "ERR_OK" {
			t.Errorf("%s = %s: %+v", kv[0], kv[1], r)
		}
	}
	for _, kv := range [][3]string{
		{"replica.write_throttling", "100*rejekt*200", "invalid throttling type"},
		{"replica.write_throttling", "100*reject", "invalid field count"},
		{"replica.write_throttling_by_size", "x*delay*1", "invalid units"},
		{"replica.read_throttling", "1*delay*1,2*delay*2", "duplicate delay"},
		{"replica.read_throttling", "", "empty env value"},
		{"replica.read_throttling_by_size", "1K*delay*100", "read_throttling_by_size takes"},
		{"replica.deny_client_request", "drop*read", "should be timeout"},
		{"replica.write_throttling", "100*reject*-1", "invalid delay ms"},
	} {
		r := set(kv[0], kv[1])
		if r.Err != "ERR_INVALID_PARAMETERS" || !strings.Contains(r.HintMessage, kv[2]) {
			t.Errorf("%s = %q: %s %q, want ERR_INVALID_PARAMETERS with %q", kv[0], kv[1], r.Err, r.HintMessage, kv[2])
		}
	}
	envs := tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusAvailable}).Infos[0].Envs
	if envs["replica.write_throttling"] != "20K*delay*100,100K*reject*200" || envs["replica.deny_client_request"] != "reconfig*all" {
		t.Fatalf("envs after refused updates: %v", envs)
	}
	// Bad forms in create_app's envs are refused too.
	o := goAdminOptions(2, 1)
	o.Envs = map[string]string{"replica.write_throttling": "fast"}
	if r := tm.createOpts("u", o); r.Err != "ERR_INVALID_PARAMETERS" {
		t.Fatalf("create with a bad throttling env: %s", r.Err)
	}
}

// TestTableLimits: create_app past max_tables, max_partitions_per_table,
// max_replicas_per_server or max_table_name_length, and env updates past the env count
// and size limits, are refused with ERR_INVALID_PARAMETERS.
func TestTableLimits(t *testing.T) {
	st := NewSettings()
	reg := st.Registry()
	for k, v := range map[string]string{"max_tables": "3", "max_partitions_per_table": "64", "max_replicas_per_server": "100",
		"max_table_name_length": "10", "max_app_envs": "4", "max_app_env_value_length": "100", "max_app_envs_bytes": "300"} {
		if err := reg.Set(k, v); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	tm := startMeta(t, Config{Settings: st})
	tm.syncAll(nodeAddrs(2))
	refused := func(name string, partitions, replicas int32) {
		t.Helper()
		if r := tm.createOpts(name, goAdminOptions(partitions, replicas)); r.Err != "ERR_INVALID_PARAMETERS" {
			t.Fatalf("create %s (%d×%d): %s, want ERR_INVALID_PARAMETERS", name, partitions, replicas, r.Err)
		}
	}
	refused("t", 65, 1)            // past max_partitions_per_table
	refused("averylongname", 4, 1) // past max_table_name_length
	tm.create("a", 64, 2)          // 128 replicas on 2 servers
	refused("b", 64, 2)            // 256 replicas > 2 × 100
	tm.create("b", 8, 1)
	tm.create("c", 8, 1)
	refused("d", 1, 1) // past max_tables
	set := func(kv ...string) *idl.UpdateAppEnvResponse {
		var ks, vs []string
		for i := 0; i < len(kv); i += 2 {
			ks, vs = append(ks, kv[i]), append(vs, kv[i+1])
		}
		return tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "a", Op: idl.AppEnvOpSet, Keys: idl.Some(ks), Values: idl.Some(vs)})
	}
	if r := set("k1", "v", "k2", "v", "k3", "v", "k4", "v"); r.Err != "ERR_OK" {
		t.Fatal(r.Err)
	}
	for _, tc := range []struct {
		kv   []string
		hint string
	}{
		{[]string{"k5", "v"}, "max_app_envs"},
		{[]string{"k1", strings.Repeat("x", 101)}, "max_app_env_value_length"},
		{[]string{"k1", strings.Repeat("x", 90), "k2", strings.Repeat("x", 90), "k3", strings.Repeat("x", 90), "k4", strings.Repeat("x", 90)}, "max_app_envs_bytes"},
	} {
		if r := set(tc.kv...); r.Err != "ERR_INVALID_PARAMETERS" || !strings.Contains(r.HintMessage, tc.hint) {
			t.Errorf("set %d envs: %s %q, want %s", len(tc.kv)/2, r.Err, r.HintMessage, tc.hint)
		}
	}
}
