package dup

import (
	"fmt"
	"strings"

	"github.com/gopegasus/pegasus/internal/idl"
)

// Transition reports whether a duplication may go from status from to status to, as
// RPC_CM_MODIFY_DUPLICATION allows (operations.md §1): INIT→PREPARE, PREPARE→APP,
// INIT, APP or PAUSE→LOG, LOG→PAUSE, any→REMOVED, and any status to itself.
func Transition(from, to idl.DuplicationStatus) bool {
	switch {
	case from == to, to == idl.DupStatusRemoved:
		return true
	case to == idl.DupStatusPrepare:
		return from == idl.DupStatusInit
	case to == idl.DupStatusApp:
		return from == idl.DupStatusPrepare
	case to == idl.DupStatusLog:
		return from == idl.DupStatusInit || from == idl.DupStatusApp || from == idl.DupStatusPause
	case to == idl.DupStatusPause:
		return from == idl.DupStatusLog
	}
	return false
}

// ValidStatus reports whether s is one of the statuses of the wire enum.
func ValidStatus(s idl.DuplicationStatus) bool {
	return s >= idl.DupStatusInit && s <= idl.DupStatusRemoved
}

// ValidFailMode reports whether m is one of the fail modes of the wire enum.
func ValidFailMode(m idl.DuplicationFailMode) bool {
	return m >= idl.DupFailSlow && m <= idl.DupFailFast
}

// ParseFailMode reads a fail mode as the shell's set_dup_fail_mode spells it: "slow" or
// "skip" (case-insensitive). FAIL_FAST is refused: see the package doc.
func ParseFailMode(s string) (idl.DuplicationFailMode, error) {
	switch strings.ToLower(s) {
	case "slow":
		return idl.DupFailSlow, nil
	case "skip":
		return idl.DupFailSkip, nil
	}
	return 0, fmt.Errorf("dup: fail mode %q: want slow or skip", s)
}
