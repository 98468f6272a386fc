package peaka

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// sameAsEncodingJSON decodes body with the streaming reader, whole and one
// byte per read (so that every token crosses a buffer refill), and checks
// that it accepts exactly what json.Unmarshal accepts and decodes the same
// value.
func sameAsEncodingJSON[T any](t *testing.T, body string) {
	t.Helper()
	var want T
	if streamReader(&want) == nil {
		t.Fatalf("%T is decoded by encoding/json, not the streaming reader: nothing to compare", want)
	}
	wantErr := json.Unmarshal([]byte(body), &want)
	for name, r := range map[string]io.Reader{
		"whole":          strings.NewReader(body),
		"one byte reads": iotest.OneByteReader(strings.NewReader(body)),
	} {
		var got T
		err := decodeJSON(r, &got)
		switch {
		case err != nil && wantErr == nil:
			t.Errorf("%s: %.80q refused (%v), encoding/json accepts it", name, body, err)
		case err == nil && wantErr != nil:
			t.Errorf("%s: %.80q accepted, encoding/json refuses it (%v)", name, body, wantErr)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Errorf("%s: %.80q decoded\n%+v\nencoding/json decoded\n%+v", name, body, got, want)
		}
	}
}

func TestStreamReaderMatchesEncodingJSON(t *testing.T) {
	long := strings.Repeat("x", 20000) // longer than the reader's first buffer
	cacheStatus := []string{
		// Shapes of real answers.
		`{"id":"c","status":"COMPLETED","catalogId":"1","schemaName":"s","tableName":"t","projectId":"p",
		  "lastIncrementalCacheExecution":{"id":"e","executionMode":"INCREMENTAL","status":"COMPLETED","error":{},
		    "progress":{"numberOfCachedRecords":5,"numberOfInsertedRecords":2,"numberOfUpdatedRecords":1,"numberOfDeletedRecords":0,"lastOffset":"o","lastCacheTxId":"x"},
		    "createdAt":"2023-11-07T05:31:56Z","updatedAt":"2023-11-07T05:31:56.123456789Z","finishedAt":"2023-11-07T05:31:56"},
		  "lastFullRefreshCacheExecution":null,
		  "cacheActionLogs":[{"timestamp":"2023-11-07T05:31:56Z","action":"EXECUTION_COMPLETED","message":"m","cacheType":"INCREMENTAL","isScheduled":true}]}`,
		`null`, `{}`, ` {"id" : "c" } `, "\t\r\n{}\n",
		`{"id":"c","unknown":{"a":[1,2,{"b":null}],"c":"\"\\"},"status":"RUNNING"}`,
		// Missing, null and undocumented values.
		`{"status":null,"lastIncrementalCacheExecution":{"progress":null,"error":null}}`,
		`{"status":"SOMETHING_NEW","cacheActionLogs":[null,{},{"isScheduled":null}]}`,
		`{"cacheActionLogs":[]}`, `{"cacheActionLogs":null}`,
		// Keys matched case-insensitively, escaped, and by Unicode folding
		// (the Kelvin sign K folds to k, the long s ſ to s).
		`{"ID":"c","STATUS":"FAILED","TableName":"t"}`,
		`{"\u0069d":"c","st\u0061tus":"RUNNING"}`,
		`{"ſtatus":"RUNNING","cacheactionlogs":[{"ACTION":"x"}]}`,
		`{"id":"exact","ID":"folded"}`, `{"ID":"folded","id":"exact"}`,
		// Repeated keys: the last wins, an object adds to the first, an
		// array reuses the elements of the first.
		`{"id":"a","id":"b","status":"x","status":null}`,
		`{"lastIncrementalCacheExecution":{"id":"e1","status":"RUNNING"},"lastIncrementalCacheExecution":{"status":"COMPLETED"}}`,
		`{"lastIncrementalCacheExecution":{"id":"e1"},"lastIncrementalCacheExecution":null}`,
		`{"cacheActionLogs":[{"action":"a"},{"action":"b"},{"action":"c"}],"cacheActionLogs":[{"cacheType":"x"}],"cacheActionLogs":[{},{},{}]}`,
		`{"cacheActionLogs":[{"action":"a"}],"cacheActionLogs":[]}`,
		`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":1},"progress":{"numberOfInsertedRecords":2}}}`,
		// Strings: escapes, surrogate pairs, broken surrogates, invalid UTF-8.
		`{"id":"a\"b\\c\/d\b\f\n\r\t"}`,
		`{"id":"\u00e9\u20ac\ud83d\ude00"}`,
		`{"id":"\ud83d","status":"\ude00\ud83dx","tableName":"\ud83d\u0041"}`,
		"{\"id\":\"\xff\xfe a \xc3\"}", "{\"id\":\"\xed\xa0\x80\"}", "{\"id\":\"\xef\xbf\xbd\"}",
		`{"id":"` + long + `","message":"` + long + `\n"}`,
		`{"id":"a\'b"}`, `{"id":"a\x"}`, `{"id":"\u12"}`, `{"id":"\u12g4"}`, "{\"id\":\"a\tb\"}", "{\"id\":\"a\x00\"}",
		// Numbers.
		`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":-0,"numberOfInsertedRecords":9223372036854775807,"numberOfUpdatedRecords":-9223372036854775808}}}`,
		`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":9223372036854775808}}}`,
		`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":-9223372036854775809}}}`,
		`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":99999999999999999999999}}}`,
		`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":1.0}}}`,
		`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":1e2}}}`,
		`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":"1"}}}`,
		`{"x":-0.5e+10,"y":1E-2,"z":0}`, `{"x":01}`, `{"x":-}`, `{"x":1.}`, `{"x":.5}`, `{"x":1e}`, `{"x":+1}`, `{"x":0x10}`,
		`{"x":NaN}`, `{"x":1`, `{"x":12`,
		// Values of the wrong kind.
		`{"id":1}`, `{"id":true}`, `{"id":{}}`, `{"id":[]}`,
		`{"lastIncrementalCacheExecution":"e"}`, `{"lastIncrementalCacheExecution":[]}`, `{"lastIncrementalCacheExecution":0}`,
		`{"cacheActionLogs":{}}`, `{"cacheActionLogs":[1]}`, `{"cacheActionLogs":["a"]}`,
		`{"cacheActionLogs":[{"isScheduled":"true"}]}`, `{"cacheActionLogs":[{"isScheduled":1}]}`,
		`{"lastIncrementalCacheExecution":{"error":"boom"}}`, `{"lastIncrementalCacheExecution":{"error":[1, {"a" : "b"}]}}`,
		`{"lastIncrementalCacheExecution":{"error":` + "{ \"message\" :\n\"" + long + `" }}}`,
		`[]`, `"c"`, `1`, `true`,
		// Timestamps.
		`{"lastIncrementalCacheExecution":{"createdAt":""}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":"2023-11-07T05:31:56+03:00"}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":"2023-11-07 05:31:56"}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":"2023-02-30T00:00:00Z"}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":"2023-11-07T05:31:56.1234567891Z"}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":"\u0032023-11-07T05:31:56Z"}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":1699335116}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":{}}}`,
		// Syntax.
		``, ` `, `{`, `{"id"`, `{"id":`, `{"id":"c"`, `{"id":"c",}`, `{,}`, `{"id" "c"}`, `{id:"c"}`, `{'id':"c"}`,
		`{"id":"c"}}`, `{"id":"c"} {}`, `{"id":"c"} x`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":tru}`, `{"a":nul}`,
		`{"a":truex}`, `{"a":falsey}`, `{"a":nulll}`, `{"a":True}`, "\xef\xbb\xbf{}",
		// Nesting at and beyond encoding/json's limit.
		`{"a":` + strings.Repeat("[", maxNestingDepth-1) + strings.Repeat("]", maxNestingDepth-1) + `}`,
		`{"a":` + strings.Repeat("[", maxNestingDepth) + strings.Repeat("]", maxNestingDepth) + `}`,
		`{"a":` + strings.Repeat(`{"b":`, maxNestingDepth) + `1` + strings.Repeat("}", maxNestingDepth) + `}`,
		// Repeated keys again: null elements keep what an earlier array left
		// in the reused elements, past the first growth steps too.
		`{"cacheActionLogs":[{"action":"a","isScheduled":true},{"action":"b","isScheduled":false}],"cacheActionLogs":[{}],"cacheActionLogs":[{},null,{}]}`,
		`{"cacheActionLogs":[` + strings.Repeat(`{"action":"a","isScheduled":true},`, 11) + `{}],"cacheActionLogs":[{}],"cacheActionLogs":[` + strings.Repeat(`null,{"isScheduled":null},`, 7) + `{}]}`,
		`{"lastIncrementalCacheExecution":{"error":{"a":1}},"lastIncrementalCacheExecution":{"error":null}}`,
		`{"lastIncrementalCacheExecution":{"error":"x","progress":{"numberOfCachedRecords":1}},"lastIncrementalCacheExecution":{"id":"e","progress":{"numberOfCachedRecords":null}}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":"2023-11-07T05:31:56Z"},"lastIncrementalCacheExecution":{"createdAt":null}}`,
		// Raw error values of every kind, kept verbatim (invalid UTF-8 too).
		`{"lastIncrementalCacheExecution":{"error" : -1.5e3 ,"id":"e"}}`, `{"lastIncrementalCacheExecution":{"error":true}}`,
		`{"lastIncrementalCacheExecution":{"error":[ ]}}`, "{\"lastIncrementalCacheExecution\":{\"error\":\"\\u00e9\xff\"}}",
		// Timestamps that are not strings, or not valid UTF-8.
		"{\"lastIncrementalCacheExecution\":{\"createdAt\":\"2023-11-07T05:31:56\xff\"}}",
		`{"lastIncrementalCacheExecution":{"createdAt":"null"}}`, `{"lastIncrementalCacheExecution":{"createdAt":[]}}`,
		`{"lastIncrementalCacheExecution":{"createdAt":true}}`,
		// More surrogates; the dotted and dotless i fold to no ASCII letter.
		`{"id":"\ud83d\ud83d\ude00","status":"\uDBFF\uDFFF\uD800"}`, `{"\u0131d":"x","\u0130D":"y"}`,
	}
	// Every kind of token across the end of the reader's first buffer.
	for pad := 8100; pad < 8200; pad++ {
		cacheStatus = append(cacheStatus, `{"message":"`+strings.Repeat("x", pad)+`","lastIncrementalCacheExecution":{"error":{"a":"\u00e9\ud83d\ude00x\"\\","b":[1.5e3,true,false,null,-0.25E-3,{"c":{}}]},`+
			`"progress":{"numberOfCachedRecords":-9223372036854775808,"lastOffset":"\u00e9\ud83d\ude00\""},"createdAt":"2023-11-07T05:31:56Z"},"\u0069d":"b",`+
			`"cacheActionLogs":[{"isScheduled":true,"action":"CACHE_STARTED"},null,{"isScheduled":false}],"status":null}`)
	}
	for _, body := range cacheStatus {
		sameAsEncodingJSON[CacheStatus](t, body)
	}

	lists := []string{
		`[]`, `null`, `[null]`, `[{"id":"a"},{"id":"b"}]`, `[{"id":"a"},]`, `[{"id":"a"} {"id":"b"}]`, `[`, `{}`, `[1]`,
		`[{"id":"a","cacheActionLogs":[{"action":"x"}]},{"cacheActionLogs":[{}]}]`, `[{},null,{"id":"x"}]`, ` [ null ] `,
		strings.Repeat("[", maxNestingDepth) + strings.Repeat("]", maxNestingDepth),
		strings.Repeat("[", maxNestingDepth+1) + strings.Repeat("]", maxNestingDepth+1),
	}
	for _, body := range lists {
		sameAsEncodingJSON[[]CacheStatus](t, body)
		sameAsEncodingJSON[[]Execution](t, body)
		sameAsEncodingJSON[[]Export](t, body)
	}

	exports := []string{
		`{"id":"x","status":"SUCCEEDED","format":"JSONL","compression":"NONE","rowCount":993,"bytes":3706920,"durationMs":1055,
		  "files":[{"name":"a.jsonl","url":"https://s.invalid/a?X-Amz-Signature=00","bytes":12}],"expiresAt":"2023-11-07T05:31:56Z",
		  "downloadable":true,"error":"","createdAt":"2023-11-07T05:31:56Z","queryId":"1","catalogId":"2","schemaName":"s",
		  "tableName":"t","source":"peaka.query.\"v\"","userId":"u","userName":"owner@example.com","apiKeyPrefix":"hB","clientSource":"studio"}`,
		`{"files":[{"bytes":1},{"bytes":2}],"files":[{"name":"b"}]}`, `{"files":[]}`, `{"files":null}`, `{"files":[{"bytes":1.5}]}`,
		`{"downloadable":null}`, `{"downloadable":"yes"}`, `{"rowCount":null,"bytes":-1}`, `{"error":null}`, `{"error":{}}`,
		`{"files":[{"bytes":1},{"bytes":2},{"bytes":3}],"files":[{"bytes":4}],"files":[null,null,{}]}`,
		`{"apiKeyPrefix":"e","api\u212aeyprefix":"k"}`, `{"API\u212aEYPREFIX":"k","apiKeyPrefix":"e"}`,
	}
	for _, body := range exports {
		sameAsEncodingJSON[Export](t, body)
	}

	settings := []string{
		`{"id":"c","incrementalCacheSchedule":{"type":"BASIC","expression":"PT15M"},"fullRefreshCacheSchedule":{"type":"NONE"}}`,
		`{"incrementalCacheSchedule":null}`, `{"incrementalCacheSchedule":{"type":"BASIC"},"incrementalCacheSchedule":{"expression":"P1D"}}`,
		`{"incrementalCacheSchedule":"PT15M"}`,
		`{"incrementalCacheSchedule":{"type":"BASIC"},"incrementalCacheSchedule":null,"incrementalCacheSchedule":{}}`,
	}
	for _, body := range settings {
		sameAsEncodingJSON[CacheSettings](t, body)
	}
}

// The reader's errors say what is wrong and where, and a broken
// connection surfaces as the connection's error, not as bad JSON.
func TestStreamReaderErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"id":1}`, `cannot read a value starting with '1' as a string at offset 6`},
		{`{"id":"c",}`, `invalid character '}' looking for beginning of object key string at offset 10`},
		{`{"lastIncrementalCacheExecution":{"createdAt":"yesterday"}}`, `a timestamp of 9 characters is not ISO-8601 at offset 46`},
		{`{"lastIncrementalCacheExecution":{"progress":{"numberOfCachedRecords":1.5}}}`, `number is not a 64-bit integer at offset 70`},
		{`{"id":"c"} x`, `data after the JSON value at offset 11`},
		{`{"id":"c`, `unexpected end of JSON input`},
	} {
		var s CacheStatus
		err := decodeJSON(strings.NewReader(tc.body), &s)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", tc.body, err, tc.want)
		}
	}
	var s0 CacheStatus
	if err := decodeJSON(strings.NewReader(`{} {}`), &s0); !errors.Is(err, errTrailingData) {
		t.Errorf("second value: error %v, want errTrailingData beneath", err)
	}
	broken := errors.New("connection reset")
	var s CacheStatus
	err := decodeJSON(io.MultiReader(strings.NewReader(`{"id":"c`), iotest.ErrReader(broken)), &s)
	if !errors.Is(err, broken) {
		t.Errorf("cut connection: error %v, want the connection's", err)
	}
}

// A long answer grows the reader's buffer, and the answers after it (with
// buffers from the pool) decode on their own.
func TestStreamReaderBuffers(t *testing.T) {
	big := `{"id":"` + strings.Repeat("a", 200<<10) + `"}`
	var s CacheStatus
	if err := decodeJSON(strings.NewReader(big), &s); err != nil || len(s.ID) != 200<<10 {
		t.Fatalf("long id: %v, %d bytes", err, len(s.ID))
	}
	for range 10 {
		if err := decodeJSON(strings.NewReader(`{"id":"b"}`), &s); err != nil || s.ID != "b" {
			t.Fatalf("after a long answer: %v, id %.10q", err, s.ID)
		}
	}
	if err := decodeJSON(bytes.NewReader(nil), &s); err == nil {
		t.Fatal("empty answer accepted")
	}
}

// foldEqual agrees with bytes.EqualFold, which is how encoding/json matches
// keys that are not exact, on variants of every field name.
func TestFoldEqualMatchesEqualFold(t *testing.T) {
	var names []string
	for _, set := range []fieldSet{cacheStatusFields, executionFields, progressFields, actionLogFields,
		exportFields, exportFileFields, cacheSettingsFields, scheduleFields} {
		names = append(names, set...)
	}
	for _, name := range names {
		keys := []string{name, strings.ToUpper(name), strings.ToLower(name), name[1:], name + "x", "x" + name[1:],
			strings.ReplaceAll(name, "k", "\u212a"), strings.ReplaceAll(name, "s", "\u017f"),
			strings.ReplaceAll(strings.ToUpper(name), "S", "\u017f"), name[:len(name)-1] + "\xff", "\xff" + name, ""}
		for _, key := range keys {
			for _, other := range names {
				if got, want := foldEqual([]byte(key), other), bytes.EqualFold([]byte(key), []byte(other)); got != want {
					t.Errorf("foldEqual(%q, %q) = %v, bytes.EqualFold says %v", key, other, got, want)
				}
			}
		}
	}
}

// fieldSet.index picks the field encoding/json would: the exact name, else
// the first that bytes.EqualFold matches; whatever the hint.
func TestFieldIndexMatchesEncodingJSONRule(t *testing.T) {
	for _, set := range []fieldSet{cacheStatusFields, executionFields, progressFields, actionLogFields,
		exportFields, exportFileFields, cacheSettingsFields, scheduleFields} {
		var keys []string
		for _, name := range append(set, "message", "userId", "url", "name", "") {
			keys = append(keys, name, strings.ToUpper(name), "x"+name, strings.ReplaceAll(name, "k", "\u212a"),
				strings.ReplaceAll(name, "s", "\u017f"), name+"\xff")
		}
		for _, key := range keys {
			want := slices.Index(set, key)
			if want < 0 {
				want = slices.IndexFunc(set, func(name string) bool { return bytes.EqualFold([]byte(key), []byte(name)) })
			}
			for hint := range len(set) + 1 {
				if got := set.index([]byte(key), hint); got != want {
					t.Errorf("index(%q, hint %d) in %q = %d, want %d", key, hint, set, got, want)
				}
			}
		}
	}
}

// An action log read into the decoder's scratch space, even one cut short
// by an error, leaves nothing behind for the next answer.
func TestActionLogScratchIsClearedBetweenAnswers(t *testing.T) {
	for range 10 {
		var bad CacheStatus
		err := decodeJSON(strings.NewReader(`{"cacheActionLogs":[{"action":"a","cacheType":"x","isScheduled":true},{"action":"b"},1]}`), &bad)
		if err == nil {
			t.Fatal("an action log with a number in it decoded")
		}
		var good CacheStatus
		if err := decodeJSON(strings.NewReader(`{"cacheActionLogs":[{},{"timestamp":null},{}]}`), &good); err != nil {
			t.Fatal(err)
		}
		if len(good.CacheActionLogs) != 3 || cap(good.CacheActionLogs) != 3 {
			t.Fatalf("%d logs (capacity %d), want 3", len(good.CacheActionLogs), cap(good.CacheActionLogs))
		}
		for i, l := range good.CacheActionLogs {
			if l != (ActionLog{}) {
				t.Fatalf("log %d is %+v, want it empty", i, l)
			}
		}
	}
}

// A fault of the reader itself is an error of the one answer, not a crash
// of the exporter.
func TestStreamReaderFaultIsAnError(t *testing.T) {
	err := decodeStream(strings.NewReader(`{}`), readFunc(func(d *decoder) {
		var none []int
		_ = none[d.pos+1] // index out of range
	}))
	if err == nil || !strings.Contains(err.Error(), "internal error of the JSON reader") {
		t.Fatalf("error %v", err)
	}
}

// readFunc is a streaming reader made of a function.
type readFunc func(d *decoder)

func (f readFunc) readJSON(d *decoder) { f(d) }
