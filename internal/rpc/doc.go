// Package rpc carries Pegasus RPCs over TCP, for both sides: [Conn] is a client connection,
// [Server] accepts connections and dispatches requests to handlers by RPC name.
//
// A [Conn] is pipelined: calls from many goroutines share one TCP connection, each request
// carries a fresh sequence id, and replies are matched back by it in whatever order they
// arrive. It dials on first use and again after a break; a break fails every call pending on
// it with [ErrConnBroken]. Calls are bounded by their context's deadline, which also becomes
// the header's client timeout, as the official clients send it. [Pool] shares one Conn per
// server address.
//
// A [Server] serves one port for two protocols, as Pegasus servers do: it sniffs the first
// bytes of each connection and hands those that start with an HTTP method to an
// http.Handler, the others (starting with the "THFT" magic) to the thrift side. There a
// reader loop decodes each request and runs its handler on a goroutine of its own (a
// reused one), up to a bound per connection; one-way RPCs registered with HandleInline run
// in order on the reader itself (raft messages need that order). Replies go out through a
// writer loop that coalesces everything finished since its last write into one write call.
// Requests that are too large, malformed, or for an RPC nobody handles get the error Pegasus
// gives (or the connection is closed when the stream cannot be resynchronised); no request
// can crash the server.
//
// Peer authentication: with a cluster secret ([ServerConfig].Secret), a connection that
// opens with a peer exchange instead of "THFT" or HTTP proves it comes from a member of the
// cluster ([DialPeer], [ConnConfig].Peer; the exchange is described in peerauth.go), and is
// then served as thrift or HTTP knowing its peer ([Request].Peer, [PeerOf]). Routes
// registered with [Server.HandlePeer] (or marked with [Server.RequirePeer]) and HTTP
// handlers wrapped with [Server.RefusePeerless] refuse every other connection.
//
// TLS on the client port: with [ServerConfig].TLS, a connection that opens with a TLS
// ClientHello (first byte 0x16) is handshaken and then sniffed again, thrift or HTTP; a
// verified client certificate's subject CN is the connection's user ([Request].User,
// [UserOf]). [ServerConfig].MandatoryTLS refuses plaintext thrift and HTTP that is not a
// peer's. Clients dial with [ConnConfig].TLS ([DialTLS]). See tls.go.
//
// Client authentication: a server with an [Authenticator] ([ServerConfig].Auth; package
// sasl's Kerberos) answers RPC_NEGOTIATION on the connection's reader, and the requests that
// follow carry the identity negotiated ([Request].User); a client negotiates on each new
// connection with a [ClientAuthenticator] ([ConnConfig].Auth). Without one, a server answers
// every negotiation SASL_AUTH_DISABLE. See negotiate.go, also for mandatory authentication.
// [Server.Wrap] puts a check (the access control) in front of every route.
package rpc
