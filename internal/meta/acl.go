package meta

import (
	"context"
	"reflect"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metric"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// checkACL wraps the handler of the meta RPC name with the access control of package acl:
// with [security] enable_acl, a request that is neither a member's (peer routes are
// members' only) nor a super user's runs only for the RPCs of meta_acl_rpc_allow_list. A
// denied request is answered as Pegasus answers it: its reply with err ERR_ACL_DENY (the
// envelope ERR_OK), or the envelope ERR_ACL_DENY for a reply without an err field
// (RPC_CLI_CLI_CALL's text).
func (s *Server) checkACL(name string, peer bool, h rpc.HandlerFunc) rpc.HandlerFunc {
	if peer {
		return h
	}
	r, _ := idl.LookupRPC(name)
	return func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		if s.settings.ACL.MetaAllowed(req, name) {
			return h(ctx, req)
		}
		s.lg.Info("rpc denied by the acl", "rpc", name, "user", req.User, "remote", req.Remote.String())
		return aclDenied(r)
	}
}

// authMetrics are the client authentication and access control counters of a server.
func authMetrics(am rpc.AuthMetrics, denied int64) []metric.Metric {
	return []metric.Metric{
		metric.CounterOf("client_auth_succeeded", "Sessions", "The client connections that authenticated (Kerberos negotiation ended in SASL_SUCC)", am.Authenticated),
		metric.CounterOf("client_auth_failed", "Sessions", "The client negotiations that failed (SASL_AUTH_FAIL; the connection is closed)", am.Failed),
		metric.CounterOf("client_unauthenticated_refused", "Requests", "The requests refused with ERR_UNAUTHENTICATED (mandatory_auth, connection not authenticated)", am.Refused),
		metric.CounterOf("acl_denied", "Requests", "The requests the access control denied (ERR_ACL_DENY, or 403 on HTTP)", denied),
	}
}

// aclDenied is the answer to a denied request of r.
func aclDenied(r *idl.RPC) (idl.Value, wire.Code) {
	if r == nil || r.NewReply == nil {
		return nil, wire.ErrACLDeny
	}
	v := r.NewReply()
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Struct {
		if f := rv.Elem().FieldByName("Err"); f.IsValid() && f.CanSet() && f.Type() == reflect.TypeFor[idl.ErrorCode]() {
			f.Set(reflect.ValueOf(errCode(wire.ErrACLDeny)))
			return v, wire.OK
		}
	}
	return nil, wire.ErrACLDeny
}
