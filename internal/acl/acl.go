// Package acl is the access control of the servers, Pegasus's model: with [security]
// enable_acl, a super user (super_users) may do everything; other users may call on a meta
// server only the RPCs of meta_acl_rpc_allow_list (by default the queries a client needs to
// find its tables), and on a replica server only the tables whose env
// replica_access_controller.allowed_users lists them (or that have no such env). A user is
// the identity a client connection authenticated as (rpc.Request.User, "" when anonymous).
// Denied RPCs are answered ERR_ACL_DENY; the HTTP endpoints that change something, and
// pprof, answer 403 unless the request comes from a super user (see [Settings.GuardHTTP]).
//
// The servers' own traffic (requests from connections authenticated with the cluster's
// secret, rpc.Request.Peer) is not subject to it: members are trusted.
package acl

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/httpapi"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// EnvAllowedUsers is the table env listing the users allowed on the table (comma
// separated; empty or absent: every user).
const EnvAllowedUsers = "replica_access_controller.allowed_users"

// DefaultMetaAllowList is the default of meta_acl_rpc_allow_list: the meta RPCs every
// user may call (operations.md §7).
const DefaultMetaAllowList = "RPC_CM_CLUSTER_INFO,RPC_CM_LIST_APPS,RPC_CM_DDD_DIAGNOSE,RPC_CM_LIST_NODES,RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX"

// Settings are the access control's settings, section [security]. Safe for concurrent use.
type Settings struct {
	// EnableACL turns access control on (enable_acl, default false).
	EnableACL *config.Value[bool]
	// SuperUsers are the users allowed everything (super_users, comma separated).
	SuperUsers *config.Value[string]
	// MetaAllowList are the meta RPCs any user may call (meta_acl_rpc_allow_list, comma
	// separated; empty: DefaultMetaAllowList).
	MetaAllowList *config.Value[string]
	// TokenFile holds the HTTP super user token (super_user_token_file; empty: none): an
	// HTTP request with "Authorization: Bearer <token>" is a super user's.
	TokenFile *config.Value[string]

	supers, allow cachedSet
	token         struct {
		once sync.Once
		val  []byte
		err  error
	}
	denied atomic.Int64
}

// NewSettings registers the settings in reg.
func NewSettings(reg *config.Registry) *Settings {
	return &Settings{
		EnableACL: config.Define(reg, config.Spec[bool]{Section: "security", Name: "enable_acl",
			Description: "Whether access control is on: super_users may do everything, other users only meta_acl_rpc_allow_list on metas and the tables whose env replica_access_controller.allowed_users lists them."}),
		SuperUsers: config.Define(reg, config.Spec[string]{Section: "security", Name: "super_users",
			Description: "The users allowed everything when enable_acl is on, comma separated (Kerberos principals without the server's realm)."}),
		MetaAllowList: config.Define(reg, config.Spec[string]{Section: "security", Name: "meta_acl_rpc_allow_list",
			Description: "The meta RPCs every user may call when enable_acl is on, comma separated (empty: " + DefaultMetaAllowList + ")."}),
		TokenFile: config.Define(reg, config.Spec[string]{Section: "security", Name: "super_user_token_file",
			Description: "A file holding a token (at least 16 bytes): HTTP requests with 'Authorization: Bearer <token>' are a super user's when enable_acl is on."}),
	}
}

// Enabled reports whether access control is on. A nil Settings is off.
func (s *Settings) Enabled() bool { return s != nil && s.EnableACL.Get() }

// SuperUser reports whether user is a super user ("" never is).
func (s *Settings) SuperUser(user string) bool {
	return user != "" && s.supers.get(s.SuperUsers.Get())[user]
}

// Denied returns how many requests access control refused.
func (s *Settings) Denied() int64 { return s.denied.Load() }

// allowed is the common rule: access control off, a member of the cluster, a super user.
func (s *Settings) allowed(req *rpc.Request) bool {
	return !s.Enabled() || req.Peer != "" || s.SuperUser(req.User)
}

// MetaAllowed reports whether req, for the meta RPC name, may run.
func (s *Settings) MetaAllowed(req *rpc.Request, name string) bool {
	if s.allowed(req) {
		return true
	}
	list := s.MetaAllowList.Get()
	if strings.TrimSpace(list) == "" {
		list = DefaultMetaAllowList
	}
	if s.allow.get(list)[name] {
		return true
	}
	s.denied.Add(1)
	return false
}

// TableAllowed reports whether req may operate on a table whose env allowed_users has
// allowedUsers (EnvAllowedUsers; "" when the table has none).
func (s *Settings) TableAllowed(req *rpc.Request, allowedUsers string) bool {
	if s.allowed(req) || strings.TrimSpace(allowedUsers) == "" {
		return true
	}
	for u := range strings.SplitSeq(allowedUsers, ",") {
		if u = strings.TrimSpace(u); u != "" && u == req.User {
			return true
		}
	}
	s.denied.Add(1)
	return false
}

// SuperOnly reports whether req may do what only super users may (create and drop
// tables, change the cluster): access control off, a member, or a super user.
func (s *Settings) SuperOnly(req *rpc.Request) bool {
	if s.allowed(req) {
		return true
	}
	s.denied.Add(1)
	return false
}

// MinTokenLen is the shortest super user token accepted, in bytes.
const MinTokenLen = 16

// httpToken returns the super user token, read once from TokenFile.
func (s *Settings) httpToken() ([]byte, error) {
	s.token.once.Do(func() {
		path := s.TokenFile.Get()
		if path == "" {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			s.token.err = fmt.Errorf("acl: super user token: %w", err)
			return
		}
		if b = []byte(strings.TrimSpace(string(b))); len(b) < MinTokenLen {
			s.token.err = fmt.Errorf("acl: super user token in %s: %d bytes, want at least %d", path, len(b), MinTokenLen)
			return
		}
		s.token.val = b
	})
	return s.token.val, s.token.err
}

// CheckToken reads the super user token file, if one is set, and reports a problem with it
// (a server checks it at start).
func (s *Settings) CheckToken() error {
	if s == nil {
		return nil
	}
	_, err := s.httpToken()
	return err
}

// HTTPSuperUser reports whether an HTTP request is a super user's: from a member of the
// cluster (a connection authenticated with the cluster's secret), or carrying the super
// user token.
func (s *Settings) HTTPSuperUser(r *http.Request) bool {
	if rpc.PeerOf(r.Context()) != "" {
		return true
	}
	tok, err := s.httpToken()
	if err != nil || len(tok) == 0 {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), tok) == 1
}

// ErrDenied is the text of the HTTP answer to a request access control refused.
var ErrDenied = errors.New("ERR_ACL_DENY: this endpoint needs a super user (Authorization: Bearer <super_user_token_file's token>)")

// GuardHTTP wraps next: with access control on, a request for which guarded(path) (the
// path as the servers route it: httpapi.NormalizePath) is true gets 403 unless it is a super user's
// ([Settings.HTTPSuperUser]).
func (s *Settings) GuardHTTP(guarded func(path string) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Enabled() && guarded(httpapi.NormalizePath(r.URL.Path)) && !s.HTTPSuperUser(r) {
			s.denied.Add(1)
			http.Error(w, ErrDenied.Error(), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// MutatingHTTP reports whether an endpoint path (no leading '/') of either server changes
// something, or is pprof: what GuardHTTP guards.
func MutatingHTTP(path string) bool {
	switch path {
	case "updateConfig", "meta/app/start_compaction", "meta/app/usage_scenario", "meta/app/start_bulk_load":
		return true
	}
	return path == "pprof" || strings.HasPrefix(path, "pprof/")
}

// cachedSet is a comma-separated list parsed into a set, parsed again only when the list
// changes.
type cachedSet struct {
	p atomic.Pointer[parsedSet]
}

type parsedSet struct {
	raw string
	set map[string]bool
}

func (c *cachedSet) get(raw string) map[string]bool {
	if p := c.p.Load(); p != nil && p.raw == raw {
		return p.set
	}
	set := map[string]bool{}
	for _, u := range strings.Split(raw, ",") {
		if u = strings.TrimSpace(u); u != "" {
			set[u] = true
		}
	}
	c.p.Store(&parsedSet{raw: raw, set: set})
	return set
}
