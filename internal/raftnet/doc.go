// Package raftnet carries raft messages between servers: the metas' group on the meta
// servers, and the partitions' groups on the replica servers. One [Transport] per server
// serves every group the server takes part in.
//
// # Sending
//
// [Transport.Send] never blocks: it marshals the message and queues it for the peer at the
// given address. Every peer has two queues, each bounded by [Config.QueueSize] messages, and
// one sender goroutine: appends carrying entries, bounded also by [Config.MaxQueueBytes]
// bytes, and every other message (heartbeats, votes, answers), which the sender takes first.
// When a queue is full the message is dropped and counted ([Metrics].MessagesDropped):
// raft tolerates lost messages (it retries appends and heartbeats), so a slow or
// unreachable peer costs at most that much memory and never stalls a raft loop. The sender
// takes what is queued for its peer, up to [Config.MaxFrameBytes], and sends it as one
// frame in one one-way RPC call, so the messages of many groups to one server leave
// together in one write; it hands a frame to the connection once the previous one was taken
// by the connection's writer, so what is not written yet stays within a frame or two and a
// heartbeat waits behind at most that. Frames to one peer leave in order on one connection;
// the receiver handles them on the connection's reader goroutine (register
// [Transport.HandleRPC] with rpc.Server.HandleInline), so a peer's messages of one kind
// arrive in the order they were sent, unless some were dropped; a heartbeat or an answer
// may overtake appends queued before it, which raft allows.
//
// Connections are [rpc.Conn]s, which dial on first use and dial again on the next call
// after a connection broke. A frame the connection cannot take (the peer is down) is lost and
// counted ([Metrics].MessagesFailed); the sender goes on with the next frame.
//
// Snapshots: the transport sends whatever message it is given, MsgSnap included, in a frame
// like any other. An owner whose snapshots are too large for a frame (the partitions, whose
// snapshots are store checkpoints) keeps its MsgSnap messages out of Send and streams them
// its own way.
//
// # Lifetime
//
// [New] starts nothing. The first Send to an address starts that peer's sender goroutine.
// [Transport.Close] stops and joins every sender and closes every connection; Sends after
// it are dropped. Close is the only way to stop a transport: it closes an internal stop
// channel that the senders, and their dials, watch. No context outlives a call.
//
// # Frame
//
// A frame travels as the [idl.Blob] argument of the owner's one-way RPC ([idl.RPCMetaRaft]
// between metas, [idl.RPCRaft] between replica servers). Its layout, all integers big endian:
//
//	version   1 byte, 1
//	from      2-byte length, then that many bytes: the sender's address (host:port)
//	messages  one or more, up to the end of the frame, each:
//	  group   4-byte app id, then 4-byte partition index (the metas' group is 0.0; the
//	          replica servers' liveness pings, empty heartbeats, are of group -1.-1)
//	  length  4 bytes
//	  message that many bytes: a marshalled raftpb.Message
//
// The format is spoken only between our own servers; a receiver rejects any other version.
//
// # The sender's address
//
// The receiver learns who sent a frame from its from field, not from the connection (whose
// remote address is an ephemeral port): a meta answers a meta being added, which it knows
// by nothing else. When the servers share a cluster secret, every connection between them
// is authenticated (rpc.DialPeer; set [Config].Conn.Peer), the owner registers
// [Transport.HandleRPC] with rpc.Server.HandleInline and marks it with RequirePeer (frames
// from connections that did not authenticate are refused before they are decoded), and HandleRPC rejects a frame
// whose from field is not the address its connection authenticated as. Without a secret
// (an insecure cluster) the field is taken as claimed. Either way the owners check that the
// raft id of each message agrees with the address, and that the sender is a member of the
// message's group.
package raftnet
