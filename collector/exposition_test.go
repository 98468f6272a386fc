package collector

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// appendFloat writes what expfmt writes (strconv's shortest 'g', -0 as 0),
// its shortcut for whole numbers included, on both sides of where 'g'
// turns to exponents.
func TestAppendFloatMatchesExpfmt(t *testing.T) {
	for _, v := range []float64{0, 1, -1, 7, 10, 999999, -999999, 1e6, -1e6, 1234567, 1e15, 1e21, 0.5, -0.25,
		1.5e-7, 123456.5, math.MaxInt64, math.MinInt64, math.Copysign(0, -1), math.SmallestNonzeroFloat64} {
		want := strconv.FormatFloat(v, 'g', -1, 64)
		if v == 0 {
			want = "0" // expfmt's writeFloat: case f == 0
		}
		if got := string(appendFloat(nil, v)); got != want {
			t.Errorf("appendFloat(%v) = %q, want %q", v, got, want)
		}
	}
	// Whole numbers on both sides of each shortcut's edge, and many
	// between: timestamps, counts, sizes.
	edges := []float64{1e6 - 1, 1e6, 1e6 + 1, 1e9, 1772366400, 1e10, 1<<53 - 1, 1 << 53, 1<<53 + 2, 9.99e15, 1e16}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		edges = append(edges, math.Trunc(math.Pow(10, 6+rng.Float64()*10)))
	}
	for _, v := range edges {
		for _, v := range []float64{v, -v} {
			if got, want := string(appendFloat(nil, v)), strconv.FormatFloat(v, 'g', -1, 64); got != want {
				t.Fatalf("appendFloat(%v) = %q, want %q", v, got, want)
			}
		}
	}
	for v, want := range map[float64]string{math.Inf(1): "+Inf", math.Inf(-1): "-Inf"} {
		if got := string(appendFloat(nil, v)); got != want {
			t.Errorf("appendFloat(%v) = %q, want %q", v, got, want)
		}
	}
	if got := string(appendFloat(nil, math.NaN())); got != "NaN" {
		t.Errorf("appendFloat(NaN) = %q", got)
	}
}

func TestAppendEscaped(t *testing.T) {
	for _, tc := range []struct {
		in    string
		quote bool
		want  string
	}{
		{"plain", true, "plain"},
		{"", true, ""},
		{`a\b`, false, `a\\b`},
		{"a\nb", false, `a\nb`},
		{`say "hi"`, false, `say "hi"`},
		{`say "hi"`, true, `say \"hi\"`},
		{"\\\n\"", true, `\\\n\"`},
		{"tab\tand é", true, "tab\tand é"},
	} {
		if got := string(appendEscaped([]byte("x="), tc.in, tc.quote)); got != "x="+tc.want {
			t.Errorf("appendEscaped(%q, %v) = %q, want %q", tc.in, tc.quote, got, "x="+tc.want)
		}
	}
}
