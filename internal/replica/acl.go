package replica

import (
	"context"

	"github.com/gopegasus/pegasus/internal/acl"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// checkACL applies the table's access control (package acl) to the requests of a client
// operation as they arrive, before anything else (throttling, forwarding): with [security]
// enable_acl, a user that is not a super user, for a table whose env
// replica_access_controller.allowed_users is set and does not list them, gets
// ERR_ACL_DENY, as Pegasus answers. A forwarded request was checked by the replica it
// reached first.
func (s *Server) checkACL(name string, serve rpc.HandlerFunc) rpc.HandlerFunc {
	checked := s.atPartition(name, serve, func(ctx context.Context, req *rpc.Request, p *partition, _ bool) (idl.Value, wire.Code) {
		var allowed string
		if ti := p.table(); ti != nil {
			allowed = ti.envs[acl.EnvAllowedUsers]
		}
		if !s.settings.ACL.TableAllowed(req, allowed) {
			s.lg.Debug("request denied by the acl", "rpc", name, "user", req.User, "app_id", req.Header.AppID)
			return nil, wire.ErrACLDeny
		}
		return serve(ctx, req)
	})
	return func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		if !s.settings.ACL.Enabled() {
			return serve(ctx, req) // no partition lookup when access control is off
		}
		return checked(ctx, req)
	}
}
