package peakatest

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExportLifecycle(t *testing.T) {
	s := New(Options{})
	s.AddPartnerKey(partnerKey, partnerUID)
	s.AddExport(p1, Export{ID: "ok", RunFor: 10 * time.Second, ExpireAfter: time.Hour, Rows: 5, Bytes: 50, UserID: partnerUID})
	s.AddExport(p1, Export{ID: "bad", RunFor: 10 * time.Second, Fail: "Query exceeded the 1,000,000 row export limit"})
	f := serve(t, s)
	read := func(id string) map[string]any {
		return f.get("/data/projects/" + p1 + "/exports/" + id).object(t)
	}
	steps := []struct {
		advance       time.Duration
		ok, bad       string
		counters, err bool
	}{
		{0, "PENDING", "PENDING", false, false},
		{999 * time.Millisecond, "PENDING", "PENDING", false, false},
		{time.Millisecond, "RUNNING", "RUNNING", false, false},
		{10*time.Second - time.Millisecond, "RUNNING", "RUNNING", false, false},
		{time.Millisecond, "SUCCEEDED", "FAILED", true, true},
		{time.Hour - time.Millisecond, "SUCCEEDED", "FAILED", true, true},
		{time.Millisecond, "EXPIRED", "FAILED", true, true},
		{365 * 24 * time.Hour, "EXPIRED", "FAILED", true, true},
	}
	for _, st := range steps {
		s.Advance(st.advance)
		ok, bad := read("ok"), read("bad")
		if ok["status"] != st.ok || bad["status"] != st.bad {
			t.Fatalf("at %v: ok %v, bad %v; want %s, %s", s.Now(), ok["status"], bad["status"], st.ok, st.bad)
		}
		fields(t, "ok", ok, exportFields)
		fields(t, "bad", bad, exportFields)
		if _, has := ok["rowCount"]; has != st.counters {
			t.Errorf("at %v (%s): rowCount present %v", s.Now(), st.ok, has)
		}
		if _, has := bad["error"]; has != st.err {
			t.Errorf("at %v: error present %v", s.Now(), has)
		}
		if st.err && bad["error"] != "Query exceeded the 1,000,000 row export limit" {
			t.Errorf("error message: %v", bad["error"])
		}
		_, files := ok["files"]
		if files != (st.ok == "SUCCEEDED") || ok["downloadable"] != (st.ok == "SUCCEEDED") {
			t.Errorf("%s: files %v, downloadable %v", st.ok, files, ok["downloadable"])
		}
	}
	s.SetExportStatus(p1, "ok", "ARCHIVED")
	if got := read("ok")["status"]; got != "ARCHIVED" {
		t.Errorf("forced status: %v", got)
	}
	s.SetExportStatus(p1, "ok", "")
	if got := read("ok")["status"]; got != "EXPIRED" {
		t.Errorf("cleared status: %v", got)
	}
}

var signature = regexp.MustCompile(`X-Amz-Signature=([0-9a-f]{64})$`)

func TestExportFilesOnlyForOwner(t *testing.T) {
	f := newFixture(t) // export1 belongs to the project key's user
	path := "/data/projects/" + p1 + "/exports/" + export1

	owner := f.do("GET", path, p1Key)
	m := owner.object(t)
	if m["downloadable"] != true {
		t.Fatalf("owner: %s", owner.body)
	}
	files, _ := m["files"].([]any)
	if len(files) != 2 {
		t.Fatalf("want 2 files: %s", owner.body)
	}
	var total float64
	var sigs []string
	for _, x := range files {
		file := x.(map[string]any)
		fields(t, "file", file, map[string]string{"name": "string", "url": "string", "bytes": "number"})
		total += file["bytes"].(float64)
		u, err := url.Parse(file["url"].(string))
		if err != nil || u.Scheme != "https" || !strings.HasPrefix(u.Path, "/export/") {
			t.Errorf("url %v", file["url"])
		}
		sm := signature.FindStringSubmatch(file["url"].(string))
		if sm == nil {
			t.Fatalf("no signature in %v", file["url"])
		}
		sigs = append(sigs, sm[1])
		if !strings.HasSuffix(file["name"].(string), ".jsonl") {
			t.Errorf("name %v", file["name"])
		}
	}
	if total != 3706920 {
		t.Errorf("file sizes add up to %v", total)
	}
	if sigs[0] == sigs[1] {
		t.Error("each URL needs its own signature")
	}
	if exp := isTimestamp(t, "expiresAt", m["expiresAt"]); !exp.After(f.sim.Now()) {
		t.Errorf("expiresAt %v not after now", exp)
	}

	// A second read mints fresh links.
	again := f.do("GET", path, p1Key).object(t)
	if again["files"].([]any)[0].(map[string]any)["url"] == files[0].(map[string]any)["url"] {
		t.Error("the presigned URL did not change between reads")
	}

	// Another user sees the row without files or links.
	other := f.get(path).object(t)
	if other["downloadable"] != false {
		t.Errorf("non-owner downloadable: %v", other)
	}
	for _, k := range []string{"files", "expiresAt"} {
		if _, ok := other[k]; ok {
			t.Errorf("non-owner sees %s", k)
		}
	}
	// The list never carries files, not even for the owner.
	list := f.do("GET", "/data/projects/"+p1+"/exports", p1Key).array(t)
	item := list[0].(map[string]any)
	if _, ok := item["files"]; ok || item["downloadable"] != true {
		t.Errorf("list item for the owner: %v", item)
	}
	if strings.Contains(string(f.do("GET", "/data/projects/"+p1+"/exports", p1Key).body), "X-Amz-Signature") {
		t.Error("the list leaks a presigned URL")
	}
}
