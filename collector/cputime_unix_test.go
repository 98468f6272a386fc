//go:build unix

package collector

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the user and system time the process has used so far
// (garbage collection included).
func processCPU(b *testing.B) (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
