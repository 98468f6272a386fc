package peaka

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseISODuration parses the ISO-8601 durations of cache schedules
// ("PT15M", "PT1H30M", "P1D", "PT0.5S", "P1W", "P1DT12H"), the way Java's
// Duration.parse reads them (Peaka is written in Java): days are 24 hours,
// only seconds may have a fraction, letters may be lower case. Years and
// months have no fixed length, so they are refused rather than guessed.
func ParseISODuration(s string) (time.Duration, error) {
	in := strings.ToUpper(strings.TrimSpace(s))
	fail := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("invalid ISO-8601 duration %q: %s", truncate(s, 40), why)
	}
	neg := false
	switch {
	case strings.HasPrefix(in, "-"):
		neg, in = true, in[1:]
	case strings.HasPrefix(in, "+"):
		in = in[1:]
	}
	if !strings.HasPrefix(in, "P") {
		return fail(`must start with "P"`)
	}
	in = in[1:]
	if in == "" || in == "T" {
		return fail("no components")
	}
	var (
		total    float64
		timePart bool
		last     = -1 // index of the last unit seen, to enforce order
	)
	// Units in the order they must appear; the bool says whether they
	// belong after "T".
	units := []struct {
		letter  byte
		seconds float64
		time    bool
	}{
		{'W', 7 * 86400, false}, {'D', 86400, false},
		{'H', 3600, true}, {'M', 60, true}, {'S', 1, true},
	}
	for in != "" {
		if in[0] == 'T' {
			if timePart {
				return fail(`"T" twice`)
			}
			timePart, in = true, in[1:]
			if in == "" {
				return fail(`nothing after "T"`)
			}
			continue
		}
		i := 0
		for i < len(in) && (in[i] == '-' || in[i] == '+' || in[i] == '.' || in[i] == ',' || (in[i] >= '0' && in[i] <= '9')) {
			i++
		}
		if i == 0 || i == len(in) {
			return fail("expected a number followed by a unit")
		}
		num, unit := strings.ReplaceAll(in[:i], ",", "."), in[i]
		in = in[i+1:]
		idx := -1
		for j, u := range units {
			if u.letter == unit && u.time == timePart {
				idx = j
			}
		}
		if idx < 0 {
			if !timePart && (unit == 'Y' || unit == 'M') {
				return fail("years and months have no fixed length")
			}
			return fail(fmt.Sprintf("unexpected unit %q", unit))
		}
		if idx <= last {
			return fail("units out of order or repeated")
		}
		last = idx
		if strings.Contains(num, ".") && unit != 'S' {
			return fail("only seconds may have a fraction")
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return fail(fmt.Sprintf("bad number %q", num))
		}
		total += v * units[idx].seconds
	}
	if neg {
		total = -total
	}
	if math.Abs(total) > float64(math.MaxInt64)/1e9 {
		return fail("too long")
	}
	return time.Duration(math.Round(total * 1e9)), nil
}
