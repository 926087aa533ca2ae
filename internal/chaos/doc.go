// Package chaos holds fault-injection tests of whole clusters: replica servers running as
// separate OS processes are SIGKILLed and restarted, or SIGSTOPped and continued, and
// in-process ones are cut off from their peers or have their disks slowed, failed or
// filled (package diskfault), while clients work; the recorded history is checked for
// linearizability with porcupine (the model and the recorder are package linearize's). It
// has no non-test code.
//
// CI runs a short version. The long run (2 minutes or more):
//
//	PEGASUS_CHAOS_DURATION=2m go test -run TestChaos -v -timeout 20m ./internal/chaos/
//
// PEGASUS_CHAOS_ELASTIC=1 adds, to the chaos runs (kills or pauses), two replica servers
// joining a lively cluster and a split of the table from 4 to 8 partitions while the kills
// go on; at the end the split must be over and the table balanced over the five servers
// (=rebalance: the same without the split); see README, "Balancer, adding and removing
// servers".
//
// PEGASUS_CHAOS_DURABILITY=os runs the servers with the raft log durability "os" (the
// default is "always").
package chaos
