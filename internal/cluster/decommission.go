package cluster

import "github.com/gopegasus/pegasus/internal/idl"

// RPCDecommission is the name of the admin → meta RPC that starts, cancels and reports the
// decommission of replica servers. Args and reply are [idl.Blob]s holding a JSON
// [DecommissionRequest] and [DecommissionResponse].
const RPCDecommission = idl.RPCDecommission

// Decommission operations.
const (
	DecommissionStart  = "start"  // mark Nodes as leaving
	DecommissionCancel = "cancel" // mark Nodes as staying again
	DecommissionStatus = "status" // report only
)

// DecommissionRequest asks the meta leader to change or report which replica servers are
// leaving.
type DecommissionRequest struct {
	Op    string   `json:"op"`
	Nodes []string `json:"nodes,omitempty"`
}

// DecommissionResponse answers a [DecommissionRequest]: Err is a Pegasus error name, Leader
// the meta leader when Err is ERR_FORWARD_TO_OTHERS, Nodes the leaving servers' progress
// (after the change).
type DecommissionResponse struct {
	Err    string             `json:"err"`
	Leader string             `json:"leader,omitempty"`
	Hint   string             `json:"hint,omitempty"`
	Nodes  []DecommissionNode `json:"nodes"`
}

// DecommissionNode is how far one leaving server is: the partitions the placement still puts
// on it, those whose raft group still counts it as a voter (as their primaries report), and
// those it leads. Empty once all three are zero: the server can then be stopped.
type DecommissionNode struct {
	Node      string `json:"node"`
	Alive     bool   `json:"alive"`
	Replicas  int    `json:"replicas"`
	Voter     int    `json:"voter"`
	Primaries int    `json:"primaries"`
	Empty     bool   `json:"empty"`
}
