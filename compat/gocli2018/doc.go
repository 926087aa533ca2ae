// Package gocli2018 holds the tests that run the official Go client of 2018
// (github.com/XiaoMi/pegasus-go-client at 9400942c5d1c, the one go-ycsb v1.0.1's pegasus
// binding uses) against gopegasus servers. That client's IDL predates the host_port fields,
// so it checks the meta's rule for them (README.md, "Clients from before host_port").
//
// It is a module of its own so that the old client and its dependencies stay out of the main
// module; `.ci/run` runs its tests.
package gocli2018
