// Package compat runs, from the main module's tests, the compatibility suites that live in
// modules of their own because they depend on other clients: compat/gocli2018 (the 2018
// official go-client, and go-ycsb v1.0.1's pegasus binding on it, against our servers). A
// nested module is not part of `go test ./...`; the test here runs it, so the one test command
// covers it.
package compat
