package testcluster

import (
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gopegasus/pegasus/internal/poll"
)

// TestRaftTransportMetrics reads every server's raft transport counters on /metrics and in
// the Prometheus form: the metas' group and the partitions' groups exchange messages, so
// each server has sent and received some, and dropped none to a full queue in a quiet
// cluster.
func TestRaftTransportMetrics(t *testing.T) {
	c := Start(t, Options{Metas: 3, Replicas: 3})
	c.CreateTableReplicas(t, "temp", 4, 3)
	servers := slices.Concat(c.MetaAddrs(), c.ReplicaAddrs())
	for _, a := range servers {
		poll.Until(t, a+" sending and receiving raft messages", func() bool {
			one := []string{a}
			return metricSum(t, one, "server", "raft_messages_sent") > 0 && metricSum(t, one, "server", "raft_frames_sent") > 0 &&
				metricSum(t, one, "server", "raft_messages_received") > 0 && metricSum(t, one, "server", "raft_peers") > 0
		})
		if n := metricSum(t, []string{a}, "server", "raft_frames_rejected"); n != 0 {
			t.Errorf("%s: %d raft frames rejected", a, n)
		}
		resp, err := http.Get("http://" + a + "/metrics/prometheus")
		if err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: prometheus output does not parse: %v", a, err)
		}
		for _, name := range []string{"pegasus_server_raft_messages_sent_total", "pegasus_server_raft_messages_dropped_total",
			"pegasus_server_raft_frames_sent_total", "pegasus_server_raft_bytes_received_total", "pegasus_server_raft_peers"} {
			f := fams[name]
			if f == nil || len(f.Metric) != 1 {
				t.Errorf("%s: family %s missing", a, name)
			}
		}
		if f := fams["pegasus_server_raft_messages_sent_total"]; f != nil && f.Metric[0].GetCounter().GetValue() <= 0 {
			t.Errorf("%s: raft_messages_sent %v", a, f.Metric[0].GetCounter().GetValue())
		}
	}
}
