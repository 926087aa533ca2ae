package meta

import (
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Clients from before host_port.
//
// Pegasus added host_port fields to the meta's replies: hp_primary, hp_secondaries and
// hp_last_drops (fields 9-11) of partition_configuration, in query_cfg replies and in the
// leader hint of a refused one, and hp_node (field 3) of node_info in list_nodes replies.
// Their payload is a raw host_port under a STRUCT type byte (protocol.md §1.8), which a
// reader whose IDL lacks them cannot skip: the official go-client of 2018 (pegasus-go-client
// 9400942c5d1c, the one go-ycsb v1.0.1's pegasus binding uses) fails to open a table with
// "Unknown data type 9". Apache Pegasus's meta writes them to every client, so such a client
// cannot talk to it either.
//
// What tells the two kinds apart on the wire is the request header's client_timeout. The
// 2018 go-client's codec never fills it, so it is 0 in every frame it sends
// (testdata/vectors/gocli2018); the current go-client fills it from the call's deadline (703
// ms in testdata/vectors/01-*), and its query_cfg frame is otherwise byte for byte the same
// as the 2018 one. The Java client (header v1) sends its real timeout. So a reply carries the
// host_port fields when its request came with header v1, or with header v0 and a non-zero
// client_timeout; a v0 request with client_timeout 0 gets them left out (optional fields,
// so any reader accepts their absence). The rpc_address fields (primary, secondaries,
// last_drops, node), from which every official client routes, are written either way.
//
// The current go-client's own value can be 0 too: it truncates the time left to 32 bits of
// nanoseconds before dividing by 10^6, so about 1 call in 4,300 with a deadline above 4.29 s
// (or none) sends 0 and gets that one reply without host_port fields. Its table routing reads
// primary, not hp_primary, so only a caller looking at the host_port fields of that reply
// sees them absent. The Python client's IDL lacks the host_port fields too; the rule serves it
// only when it sends client_timeout 0. A Java client from before host_port cannot be told
// apart (header v1) and gets them.

// knowsHostPort reports whether a request with header h may be answered with host_port
// fields: it came with header v1, or from a client that fills client_timeout, which the 2018
// go-client never does (see above).
func knowsHostPort(h wire.Header) bool {
	return h.Version == 1 || h.ClientTimeout != 0
}

// forClient returns reply v as the client that sent header h can read it: without host_port
// fields when h says that client may predate them. v is modified in place; replies without
// host_port fields are returned as they are.
func forClient(h wire.Header, v idl.Value) idl.Value {
	if knowsHostPort(h) {
		return v
	}
	switch r := v.(type) {
	case *idl.QueryCfgResponse:
		for i := range r.Partitions {
			pc := &r.Partitions[i]
			pc.HPPrimary = idl.Optional[idl.HostPort]{}
			pc.HPSecondaries = idl.Optional[[]idl.HostPort]{}
			pc.HPLastDrops = idl.Optional[[]idl.HostPort]{}
		}
		ancestorPrimaries(r)
	case *idl.ListNodesResponse:
		for i := range r.Infos {
			r.Infos[i].HPNode = idl.Optional[idl.HostPort]{}
		}
	}
	return v
}

// ancestorPrimaries lists each split child that is not registered yet (ballot -1, no
// primary) with the primary of its nearest registered ancestor, whose replicas hold its keys
// until the cut-over and then send them on to the child (the replica's toAncestor and
// forwardSplit). Only clients from before host_port get this: the 2018 go-client predates
// split and, given a partition without a primary, builds a routing table on which every call
// of that partition's keys panics; it routes by hash mod count and does not look at the
// ballot. Current clients read the ballot and send such a child's keys to its parent
// themselves (protocol.md §4.3), and get the configuration as it is.
func ancestorPrimaries(r *idl.QueryCfgResponse) {
	byIndex := make(map[int32]*idl.PartitionConfiguration, len(r.Partitions))
	for i := range r.Partitions {
		byIndex[r.Partitions[i].PID.PartitionIndex] = &r.Partitions[i]
	}
	for i := range r.Partitions {
		pc := &r.Partitions[i]
		c := pc.PID.PartitionIndex
		if pc.Ballot >= 0 || !pc.Primary.IsZero() || c <= 0 {
			continue
		}
		for m := key.FirstCount(c) >> 1; m >= 1; m >>= 1 { // c's ancestors: c mod each
			if a := byIndex[c%m]; a != nil && a.Ballot > 0 && !a.Primary.IsZero() {
				pc.Primary = a.Primary
				break
			}
		}
	}
}
