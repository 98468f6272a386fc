//go:build linux

package e2e

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the program if the test binary dies without
// cleaning up (a panic, a timeout), so that no Prometheus outlives it.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
