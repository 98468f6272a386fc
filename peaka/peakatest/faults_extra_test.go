package peakatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFaultResetMidBody(t *testing.T) {
	f := newFixture(t)
	path := "/data/projects/" + p1 + "/cache/" + cacheA + "/status"
	f.sim.SetFault(cacheA, Fault{ResetMidBody: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+partnerKey)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		// The reset may overtake the headers; either way the call fails.
		t.Logf("reset before the headers were read: %v", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reading a reset body: %v, want a connection error", err)
	}
	if int64(len(body)) >= resp.ContentLength {
		t.Errorf("read %d of %d bytes", len(body), resp.ContentLength)
	}
	// The server stays usable.
	f.sim.SetFault(cacheA, Fault{})
	f.get(path)
}

func TestFaultHugeNumbers(t *testing.T) {
	f := newFixture(t)
	f.sim.SetFault(cacheA, Fault{HugeNumbers: true})
	a := f.get("/data/projects/" + p1 + "/cache/" + cacheA + "/status")
	if !json.Valid(a.body) {
		t.Fatalf("not JSON: %s", a.body)
	}
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	p := m["lastFullRefreshCacheExecution"].(map[string]any)["progress"].(map[string]any)
	n, ok := new(big.Int).SetString(string(p["numberOfCachedRecords"].(json.Number)), 10)
	if !ok || n.IsInt64() {
		t.Errorf("counter %v should be an integer beyond int64", p["numberOfCachedRecords"])
	}
	var typed struct {
		LastFullRefreshCacheExecution struct {
			Progress struct {
				NumberOfCachedRecords int64 `json:"numberOfCachedRecords"`
			} `json:"progress"`
		} `json:"lastFullRefreshCacheExecution"`
	}
	var ute *json.UnmarshalTypeError
	if err := json.Unmarshal(a.body, &typed); !errors.As(err, &ute) {
		t.Errorf("decoding into int64: %v, want an UnmarshalTypeError", err)
	}
}

// A huge answer is streamed with an exact Content-Length and stays valid
// JSON; a 50 MB one costs the simulator far less than 50 MB.
func TestFaultHugeIsStreamed(t *testing.T) {
	f := newFixture(t)
	path := "/data/projects/" + p1 + "/cache/" + cacheA + "/status"
	f.sim.SetFault(cacheA, Fault{HugeBytes: 3 << 20})
	a := f.get(path)
	if cl, _ := strconv.Atoi(a.header.Get("Content-Length")); cl != len(a.body) || cl < 3<<20 || cl > 3<<20+300 {
		t.Errorf("Content-Length %s, body %d bytes", a.header.Get("Content-Length"), len(a.body))
	}
	m := a.object(t)
	checkCacheStatus(t, "huge", m)

	f.sim.SetFault(cacheA, Fault{HugeBytes: 1 << 20, NoLength: true})
	a = f.get(path)
	if a.header.Get("Content-Length") != "" || len(a.body) < 1<<20 {
		t.Errorf("NoLength: Content-Length %q, %d bytes", a.header.Get("Content-Length"), len(a.body))
	}
	checkCacheStatus(t, "huge chunked", a.object(t))

	f.sim.SetFault(cacheA, Fault{HugeBytes: 50 << 20})
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+partnerKey)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength < 50<<20 {
		t.Fatalf("Content-Length %d", resp.ContentLength)
	}
	head := make([]byte, 64)
	if _, err := io.ReadFull(resp.Body, head); err != nil || !strings.HasPrefix(string(head), `{"cacheActionLogs":[{`) {
		t.Fatalf("%q %v", head, err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n+64 != resp.ContentLength {
		t.Errorf("read %d of %d: %v", n+64, resp.ContentLength, err)
	}
}

func TestRemoveKey(t *testing.T) {
	f := newFixture(t)
	path := "/data/projects/" + p1 + "/cache/status"
	f.sim.AddPartnerKey("rotated", "u-new")
	f.sim.RemoveKey(partnerKey)
	if a := f.do("GET", path, partnerKey); a.status != 401 {
		t.Errorf("revoked key: %d, want 401", a.status)
	}
	if a := f.do("GET", path, "rotated"); a.status != 200 {
		t.Errorf("new key: %d, want 200", a.status)
	}
}

func TestFaultMessage(t *testing.T) {
	f := newFixture(t)
	f.sim.SetFault(cacheA, Fault{Status: 400, Message: "owner@example.com may not do this"})
	a := f.do("GET", "/data/projects/"+p1+"/cache/"+cacheA+"/status", partnerKey)
	if a.status != 400 || a.object(t)["message"] != "owner@example.com may not do this" {
		t.Errorf("%d %s", a.status, a.body)
	}
}
