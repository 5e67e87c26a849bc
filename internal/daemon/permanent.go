package daemon

import (
	"context"
	"errors"
)

// permanentError marks an error of a job's input (a spec, or the tables
// it names) that retrying cannot fix. Its message is the wrapped error's.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix. Unlike Halt it
// carries no class: the caller's own test (see HaltOn) decides. Permanent
// of nil is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// HaltOn returns a job named name that runs run and halts (Halt) on an
// error for which permanent holds; any other error is returned as it is,
// for the runner to classify.
func HaltOn(name string, permanent func(error) bool, run func(ctx context.Context) error) Job {
	return Job{Name: name, Run: func(ctx context.Context) error {
		err := run(ctx)
		if permanent(err) {
			return Halt(err)
		}
		return err
	}}
}
