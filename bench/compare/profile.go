package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// profile is the top of a CPU profile of the onebox under one workload.
type profile struct {
	workload string
	result   result
	top      string // "go tool pprof -top" output, trimmed
}

// profileOnebox restarts the loaded onebox under the profiling wrapper once per workload,
// runs the workload and keeps the top of each CPU profile. These runs are not the measured
// ones: the profiler costs a little CPU.
func profileOnebox(ctx context.Context, st store, profBin, dir string, ports []int, s settings) ([]profile, error) {
	var out []profile
	for _, w := range s.workloads {
		file := filepath.Join(dir, "onebox-"+w+".pprof")
		fmt.Printf("== %s: profiling workload %s\n", st.label, w)
		srv, err := startOneboxWith(ctx, dir, profBin, []string{"-cpuprofile", file}, ports)
		if err != nil {
			return nil, err
		}
		ws := s
		ws.workloads = []string{w}
		rs, err := runPhases(ctx, st, srv, ws, false)
		srv.stop() // the wrapper writes the profile as it exits
		if err != nil {
			return nil, err
		}
		flat, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=15", profBin, file).Output()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof: %w", err)
		}
		cum, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=40", profBin, file).Output()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof: %w", err)
		}
		out = append(out, profile{workload: w, result: rs[0], top: trimTop(string(flat)) + "\n\nBy cumulative time:\n" + trimTop(string(cum))})
	}
	return out, nil
}

// trimTop drops pprof's header lines up to the summary ("Showing nodes ...").
func trimTop(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Duration:") || strings.HasPrefix(l, "Showing nodes") {
			return strings.Join(lines[i:], "\n")
		}
	}
	return strings.Join(lines, "\n")
}
