// Package pegasus is the Go client of gopegasus, a distributed key-value store that speaks
// Apache Pegasus's wire protocol. Its API is the Apache Pegasus go-client's: a program written
// for that client compiles against this one after changing only the import path, and this
// client sends the same bytes on the wire (except for a correct client timeout).
//
// A record is addressed by a hash key and a sort key. Records with the same hash key live in
// the same partition and are ordered by sort key, which makes multi-key operations on one hash
// key (MultiGet, MultiSet, MultiDel, DelRange, CheckAndSet, scanners) atomic or efficient.
//
// Usage:
//
//	c, err := pegasus.New(pegasus.Config{MetaServers: []string{"127.0.0.1:34601"}})
//	if err != nil { ... }
//	defer c.Close()
//	tb, err := c.OpenTable(ctx, "temp")
//	if err != nil { ... }
//	err = tb.Set(ctx, []byte("h"), []byte("s"), []byte("v"))
//	v, err := tb.Get(ctx, []byte("h"), []byte("s")) // v == nil, err == nil: not found
//
// # Routing and failures
//
// A table's partition for a hash key is the Pegasus CRC-64 of the hash key modulo the
// partition count; each call goes to the partition's primary replica, which the client learns
// from the meta servers (RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX) when the table is opened. One
// pipelined connection per server address is shared by every table of a [Client].
//
// When a replica answers that it does not serve the partition (ERR_OBJECT_NOT_FOUND,
// ERR_INVALID_STATE, ...) or cannot be reached, the client refreshes the table's
// configuration from the meta servers (concurrent failures share one refresh) and, when the
// request is safe to repeat, sends it again to the new primary with a short exponential
// backoff, always within the context's deadline. Reads and idempotent writes (Set, Del,
// MultiSet, MultiDel) are retried; Incr and CheckAndSet are retried only when the request
// provably never reached a server (the connection could not be made, or no primary was known)
// or the replica reported that it does not host the partition at all. A call whose context has
// no deadline gets [DefaultTimeout] (configurable in [Config]).
//
// Unlike the Apache client, a storage-level failure reported in a reply (for example Incr on a
// value that is not an integer) is returned at once as a [StatusError], not retried until the
// deadline.
//
// # Errors
//
// Every operation returns errors as *[PError], which names the operation and wraps the cause
// with the table, partition and server address. errors.Is reaches the Pegasus error codes
// re-exported here ([ErrObjectNotFound], [ErrInvalidState], ...), storage statuses
// ([StatusInvalidArgument], ...), [ErrInvalidArgument] for rejected arguments and
// context.DeadlineExceeded / context.Canceled. A write that failed after its request left the
// process, with no answer saying it was refused (its connection broke, its server timed out),
// may have been applied: its error wraps [ErrOutcomeUnknown].
package pegasus
