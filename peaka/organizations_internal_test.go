package peaka

import (
	"encoding/json"
	"testing"
)

func TestOneOrManyDecodesBothShapes(t *testing.T) {
	for in, want := range map[string]int{`[{"id":"x"},{"id":"y"}]`: 2, `{"id":"x"}`: 1, `[]`: 0, `null`: 0} {
		var orgs oneOrMany[Organization]
		if err := json.Unmarshal([]byte(in), &orgs); err != nil || len(orgs) != want {
			t.Errorf("%s: %d organizations, %v; want %d", in, len(orgs), err, want)
		}
	}
	var orgs oneOrMany[Organization]
	if err := json.Unmarshal([]byte(`"nope"`), &orgs); err == nil {
		t.Error("a string decoded as organizations")
	}
}
