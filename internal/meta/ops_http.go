package meta

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gopegasus/pegasus/internal/httpapi"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The HTTP endpoints of backups and bulk loads (http-api.md, operations.md §2, §3).

// httpBackupPolicy serves /meta/backup_policy[?name=P]: a column table keyed by policy name.
func (s *Server) httpBackupPolicy(w http.ResponseWriter, r *httpapi.Request) {
	if s.cfg.ColdBackupDisabled {
		httpapi.Reply(w, http.StatusNotFound, "cold_backup_disabled")
		return
	}
	if !r.Args.Only("name") {
		httpapi.Reply(w, http.StatusBadRequest, "Invalid parameter")
		return
	}
	var names []string
	if n, ok := r.Args.Get("name"); ok {
		names = []string{n}
	}
	s.onLeader(w, r, func(context.Context) {
		t := httpapi.Table{Columns: []string{"name", "backup_provider_type", "backup_interval", "app_ids", "start_time", "status", "backup_history_count"}}
		var missing []string
		for _, p := range s.m.policies(names, &missing) {
			ids := make([]string, len(p.AppIDs))
			for i, id := range p.AppIDs {
				ids[i] = strconv.Itoa(int(id))
			}
			status := "enabled"
			if p.Disabled {
				status = "disabled"
			}
			t.Rows = append(t.Rows, []string{p.Name, p.Provider, strconv.FormatInt(p.IntervalSec, 10),
				"[" + strings.Join(ids, ",") + "]", p.StartTime, status, strconv.Itoa(int(p.HistoryCount))})
		}
		httpapi.ReplyTables(w, http.StatusOK, t)
	})
}

// httpStartBulkLoad serves POST /meta/app/start_bulk_load.
func (s *Server) httpStartBulkLoad(w http.ResponseWriter, r *httpapi.Request) {
	fields := []string{"app_name", "cluster_name", "file_provider_type", "remote_root_path"}
	sv, _, ok := jsonBody(r, fields, nil)
	if !ok {
		httpapi.Reply(w, http.StatusBadRequest, "invalid request structure")
		return
	}
	for _, f := range fields {
		if _, present := sv[f]; !present {
			httpapi.Reply(w, http.StatusBadRequest, "invalid request structure")
			return
		}
	}
	for _, f := range fields {
		if sv[f] == "" {
			httpapi.Reply(w, http.StatusBadRequest, f+" should not be empty")
			return
		}
	}
	v, code := s.startBulkLoad(r.Context(), &idl.StartBulkLoadRequest{AppName: sv["app_name"], ClusterName: sv["cluster_name"],
		FileProviderType: sv["file_provider_type"], RemoteRootPath: sv["remote_root_path"]})
	resp, ok := v.(*idl.StartBulkLoadResponse)
	if code != wire.OK || !ok {
		httpapi.Reply(w, http.StatusInternalServerError, code.Name())
		return
	}
	httpapi.ReplyTables(w, http.StatusOK, httpapi.KV("", [2]string{"error", string(resp.Err)}, [2]string{"hint_msg", resp.HintMsg}))
}

// httpQueryBulkLoad serves /meta/app/query_bulk_load?name=T.
func (s *Server) httpQueryBulkLoad(w http.ResponseWriter, r *httpapi.Request) {
	name, ok := r.Args.Get("name")
	if !ok {
		httpapi.Reply(w, http.StatusBadRequest, "name should not be empty")
		return
	}
	s.onLeader(w, r, func(context.Context) {
		code, status := wire.OK, idl.BulkLoadInvalid
		if t := s.m.state.availableTable(name); t != nil {
			status = s.m.bulkLoadStatusOf(t.AppID)
		} else {
			code = wire.ErrAppNotExist
			for _, d := range s.m.state.Tables {
				if d.Name == name {
					code = wire.ErrAppDropped
				}
			}
		}
		httpapi.ReplyTables(w, http.StatusOK, httpapi.KV("", [2]string{"error", code.Name()},
			[2]string{"app_status", fmt.Sprintf("replication::bulk_load_status::%s", status)}))
	})
}
