//go:build !unix

package collector

import (
	"testing"
	"time"
)

// processCPU is not measured here: the benchmark leaves out cpu-ns/target.
func processCPU(*testing.B) (time.Duration, bool) { return 0, false }
