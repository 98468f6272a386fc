//go:build race

package e2e

// raceEnabled builds the exporter with the race detector too, so that the
// end-to-end test also hunts data races in the binary under real load.
const raceEnabled = true
