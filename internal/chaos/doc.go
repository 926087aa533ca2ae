// Package chaos holds fault-injection tests of whole clusters running as separate OS
// processes: replica servers are SIGKILLed and restarted while clients work, and the recorded
// history is checked for linearizability with porcupine. It has no non-test code.
//
// CI runs a short version. The long run (2 minutes or more):
//
//	PEGASUS_CHAOS_DURATION=2m go test -run TestChaos -v -timeout 20m ./internal/chaos/
//
// PEGASUS_CHAOS_DURABILITY=os runs the servers with the raft log durability "os" (the
// default is "always").
package chaos
