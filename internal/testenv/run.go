package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// RunKilled runs the program bin with args, FLOE_CRASH=crash in its
// environment (the crash hook; "" for none) and its output appended to
// logPath, until it exits or killAfter passes, when it is SIGKILLed. The
// outcome is "finished" (exit 0, also just before the kill), "crashed by
// hook" (the crash hook killed it) or "killed"; any other exit is an
// error carrying the log's last 30 lines.
func RunKilled(bin, logPath, crash string, killAfter time.Duration, args ...string) (string, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	defer func() { _ = logf.Close() }()
	fmt.Fprintf(logf, "---- run %s crash=%q killAfter=%s\n", strings.Join(args, " "), crash, killAfter)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FLOE_CRASH="+crash)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return "finished", nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				return "crashed by hook", nil
			}
		}
		tail, _ := os.ReadFile(logPath)
		return "", fmt.Errorf("%s failed: %w\n%s", strings.Join(args, " "), err, LastLines(tail, 30))
	case <-time.After(killAfter):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		if err := <-done; err == nil {
			return "finished", nil // it ended just before the kill
		}
		return "killed", nil
	}
}

// LastLines is the last n lines of b.
func LastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
