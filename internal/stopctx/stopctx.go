// Package stopctx turns a component's stop channel into a context, for the calls its own
// goroutines make that must end when the component closes (a dial, a compaction) rather
// than with any caller's context. Such a context is made where the call is made, never kept
// in a struct.
package stopctx

import (
	"context"
	"time"
)

// New returns a context that is done once stop is closed; its Err is then
// [context.Canceled]. It has no deadline and no values.
func New(stop <-chan struct{}) context.Context { return stopContext(stop) }

type stopContext <-chan struct{}

func (c stopContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c stopContext) Done() <-chan struct{}       { return c }
func (c stopContext) Value(any) any               { return nil }

func (c stopContext) Err() error {
	select {
	case <-c:
		return context.Canceled
	default:
		return nil
	}
}
