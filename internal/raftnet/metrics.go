package raftnet

import "github.com/gopegasus/pegasus/internal/metric"

// ServerMetrics returns m as metrics of the server entity a transport belongs to, named
// raft_* (raft_messages_sent, raft_messages_dropped, raft_frames_sent, ...), for the HTTP
// API to render on /metrics and in Prometheus form. The meta and the replica servers both
// report their transport this way.
func (m Metrics) ServerMetrics() []metric.Metric {
	return []metric.Metric{
		metric.GaugeOf("raft_peers", "Servers", "The peers raft messages were sent to", int64(m.Peers)),
		metric.CounterOf("raft_frames_sent", "Frames", "The raft frames handed to peer connections", m.FramesSent),
		metric.CounterOf("raft_messages_sent", "Messages", "The raft messages handed to peer connections", m.MessagesSent),
		metric.CounterOf("raft_bytes_sent", "Bytes", "The bytes of the raft frames handed to peer connections", m.BytesSent),
		metric.CounterOf("raft_messages_dropped", "Messages", "The raft messages dropped because their peer's queue was full", m.MessagesDropped),
		metric.CounterOf("raft_bytes_dropped", "Bytes", "The bytes of the raft appends dropped because their peer's queue held max_raft_queue_bytes_per_peer", m.BytesDropped),
		metric.GaugeOf("raft_queued_bytes", "Bytes", "The bytes of raft appends queued for the peers and not yet taken by their connections", m.QueuedBytes),
		metric.CounterOf("raft_messages_unroutable", "Messages", "The raft messages not sent for want of an address other than this server's", m.MessagesUnroutable),
		metric.CounterOf("raft_frames_failed", "Frames", "The raft frames lost because their peer was unreachable", m.FramesFailed),
		metric.CounterOf("raft_messages_failed", "Messages", "The raft messages lost because their peer was unreachable", m.MessagesFailed),
		metric.CounterOf("raft_frames_received", "Frames", "The well-formed raft frames received", m.FramesReceived),
		metric.CounterOf("raft_messages_received", "Messages", "The raft messages received", m.MessagesReceived),
		metric.CounterOf("raft_bytes_received", "Bytes", "The bytes of the well-formed raft frames received", m.BytesReceived),
		metric.CounterOf("raft_frames_rejected", "Frames", "The malformed raft frames received and dropped", m.FramesRejected),
	}
}
