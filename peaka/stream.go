package peaka

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The answers read on every scrape (cache statuses, export jobs, execution
// history, cache settings) are decoded by the streaming reader of this
// file, through the per-type readers of readers.go, instead of
// encoding/json: on a 2-core machine encoding/json spent about
// 70 µs on a 2.7 KiB cache status, a third of the exporter's CPU per
// target. The reader decodes into the same types with the same outcome as
// json.Unmarshal (the fuzz targets in fuzz_test.go compare the two on
// every input): the same fields matched (exactly, then case-insensitively),
// the same values for missing, null and duplicate keys, the same strings
// (escapes, invalid UTF-8 replaced by U+FFFD), the same syntax and type
// errors (the messages differ), the same nesting limit. It reads from the
// connection through a small buffer, so the text of a project-wide list of
// megabytes never sits in memory whole.

// maxNestingDepth is encoding/json's limit on nested arrays and objects.
const maxNestingDepth = 10000

// decodeError is a syntax or type error of an answer, with the byte offset
// where it was found and the error beneath it, if any.
type decodeError struct {
	offset int64
	msg    string
	err    error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("%s at offset %d", e.msg, e.offset)
}

func (e *decodeError) Unwrap() error { return e.err }

var errUnexpectedEnd = errors.New("unexpected end of JSON input")

// decoder reads JSON values from r. Errors unwind by panic with a
// decodePanic and are turned back into an error by decodeStream, which keeps the
// readers of each type free of error plumbing.
type decoder struct {
	r        io.Reader
	buf      []byte
	pos, end int   // unread bytes are buf[pos:end]
	keep     int   // first byte fill must keep (a token being read), or -1
	hold     int   // start of a raw value being kept whole, or -1
	consumed int64 // bytes dropped from the front of buf, for offsets
	depth    int
	rerr     error // the reader's last error, io.EOF at its end
	scratch  []byte
	// actionLogs is where a cache's action log is read before it is
	// copied into a slice of its exact length (readSliceExact).
	actionLogs []ActionLog
}

type decodePanic struct{ err error }

// decoders holds decoders and their read buffers between answers, so that
// thousands of answers per scrape do not each allocate them: a cache in the
// way of encoding/json's own pools, with nothing in it that outlives a
// decode (buffers are cleared before a decoder goes back, so no answer's
// bytes linger).
var decoders = sync.Pool{New: func() any { return &decoder{buf: make([]byte, 8<<10)} }}

// maxPooledBuffer and maxPooledActionLogs bound what decoders keep: one
// that grew for a long token or log is left to the garbage collector.
const (
	maxPooledBuffer     = 64 << 10
	maxPooledActionLogs = 1024
)

// streamDecodable is an answer type with a streaming reader (readers.go).
type streamDecodable interface{ readJSON(d *decoder) }

// decodeStream decodes exactly one JSON value from r with v's reader;
// anything but white space after it is an error.
func decodeStream(r io.Reader, v streamDecodable) (err error) {
	d := decoders.Get().(*decoder)
	*d = decoder{r: r, buf: d.buf, scratch: d.scratch[:0], actionLogs: d.actionLogs, keep: -1, hold: -1}
	defer func() {
		if len(d.buf) <= maxPooledBuffer && cap(d.scratch) <= maxPooledBuffer && cap(d.actionLogs) <= maxPooledActionLogs {
			clear(d.buf) // compaction leaves old bytes past end too
			clear(d.scratch[:cap(d.scratch)])
			clear(d.actionLogs[:cap(d.actionLogs)]) // an error may have left some half read
			*d = decoder{buf: d.buf, scratch: d.scratch, actionLogs: d.actionLogs}
			decoders.Put(d)
		}
		if v := recover(); v != nil {
			p, ok := v.(decodePanic)
			if !ok {
				// A fault of the reader itself, not of the answer: the
				// target fails, the exporter goes on serving.
				err = fmt.Errorf("internal error of the JSON reader: %v", v)
				return
			}
			err = p.err
		}
	}()
	d.space()
	if !d.more() {
		d.failEnd()
	}
	v.readJSON(d)
	d.space()
	if d.more() {
		panic(decodePanic{&decodeError{offset: d.consumed + int64(d.pos), msg: errTrailingData.Error(), err: errTrailingData}})
	}
	if d.rerr != nil && d.rerr != io.EOF {
		return d.rerr
	}
	return nil
}

func (d *decoder) fail(format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	panic(decodePanic{&decodeError{offset: d.consumed + int64(d.pos), msg: msg}})
}

// failEnd reports input that ended inside a value: a read error if the
// connection broke, else a truncated answer.
func (d *decoder) failEnd() {
	if d.rerr != nil && d.rerr != io.EOF {
		panic(decodePanic{d.rerr})
	}
	panic(decodePanic{errUnexpectedEnd})
}

// more reports whether an unread byte is available, reading if needed.
func (d *decoder) more() bool {
	return d.pos < d.end || d.fill()
}

// fill reads more input after the unread bytes, moving them (and the
// bytes from keep and hold on, if set) to the front of the buffer, or
// growing it. It reports whether anything was read.
func (d *decoder) fill() bool {
	if d.rerr != nil {
		return false
	}
	start := d.pos
	if d.keep >= 0 && d.keep < start {
		start = d.keep
	}
	if d.hold >= 0 && d.hold < start {
		start = d.hold
	}
	if start > 0 {
		d.end = copy(d.buf, d.buf[start:d.end])
		d.pos -= start
		if d.keep >= 0 {
			d.keep -= start
		}
		if d.hold >= 0 {
			d.hold -= start
		}
		d.consumed += int64(start)
	}
	if d.end == len(d.buf) {
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for range 100 {
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err != nil {
			d.rerr = err
		}
		if n > 0 {
			return true
		}
		if err != nil {
			return false
		}
	}
	d.rerr = io.ErrNoProgress
	return false
}

// next returns the next byte without consuming it; the input must not end.
// Small enough to be inlined: the buffer holds the next byte nearly always.
func (d *decoder) next() byte {
	if d.pos < d.end {
		return d.buf[d.pos]
	}
	return d.nextAfterFill()
}

func (d *decoder) nextAfterFill() byte {
	if !d.fill() {
		d.failEnd()
	}
	return d.buf[d.pos]
}

// space skips white space as JSON defines it. Answers seldom have any: the
// check for none is small enough to be inlined.
func (d *decoder) space() {
	if d.pos < d.end && d.buf[d.pos] > ' ' {
		return
	}
	d.skipSpace()
}

func (d *decoder) skipSpace() {
	for d.more() {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// ensure makes n bytes from index i available (i at or after keep), and
// returns i, which moves if the buffer was compacted.
func (d *decoder) ensure(i, n int) int {
	for d.end-i < n {
		off := i - d.keep
		if !d.fill() {
			d.pos = d.end
			d.failEnd()
		}
		i = d.keep + off
	}
	return i
}

// literal consumes the literal word (true, false or null) at pos.
func (d *decoder) literal(word string) {
	d.keep = d.pos
	i := d.ensure(d.pos, len(word))
	for k := 1; k < len(word); k++ {
		if d.buf[i+k] != word[k] {
			d.pos = i + k
			d.keep = -1
			d.fail("invalid character %q in literal %s", d.buf[i+k], word)
		}
	}
	d.pos = i + len(word)
	d.keep = -1
}

// null consumes a null if that is the next value.
func (d *decoder) null() bool {
	if d.next() != 'n' {
		return false
	}
	d.literal("null")
	return true
}

// stringClass marks the bytes a string scan must stop at: 1 for the quote,
// the backslash and control characters, 2 for bytes beyond ASCII.
var stringClass = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = 1
	}
	t['"'], t['\\'] = 1, 1
	for c := 0x80; c < 256; c++ {
		t[c] = 2
	}
	return t
}()

// rawString scans the string starting at pos (the opening quote) and
// returns its raw contents, valid until the next read, and whether they
// need unquoting.
func (d *decoder) rawString() (raw []byte, plain bool) {
	d.pos++
	d.keep = d.pos
	i := d.pos
	plain = true
	for {
		// The common run of plain bytes, in a loop of its own.
		b := d.buf[:d.end]
		for i < len(b) && stringClass[b[i]] == 0 {
			i++
		}
		if i >= d.end {
			i = d.ensure(i, 1)
			continue
		}
		c := d.buf[i]
		switch stringClass[c] {
		case 2:
			plain = false
			i++
		default:
			switch {
			case c == '"':
				raw = d.buf[d.keep:i]
				d.pos = i + 1
				d.keep = -1
				return raw, plain
			case c == '\\':
				plain = false
				i = d.ensure(i, 2)
				switch d.buf[i+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					i += 2
				case 'u':
					i = d.ensure(i, 6)
					for k := 2; k < 6; k++ {
						if hexValue(d.buf[i+k]) < 0 {
							d.pos = i + k
							d.fail("invalid character %q in \\u escape", d.buf[i+k])
						}
					}
					i += 6
				default:
					d.pos = i + 1
					d.fail("invalid escape character %q in string", d.buf[i+1])
				}
			default:
				d.pos = i
				d.fail("invalid control character %q in string", c)
			}
		}
	}
}

func hexValue(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// stringBytes reads a string token (pos at its opening quote) and returns
// its value as encoding/json unquotes it, valid until the next read.
func (d *decoder) stringBytes() []byte {
	raw, plain := d.rawString()
	if plain {
		return raw
	}
	d.scratch = unquote(d.scratch[:0], raw)
	return d.scratch
}

// unquote appends the value of the validated string contents s to b:
// escapes resolved, a lone or broken surrogate and every invalid UTF-8
// byte replaced by U+FFFD, as encoding/json does.
func unquote(b, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := u4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, u4(s[i+2:])); pair != unicode.ReplacementChar {
							b = utf8.AppendRune(b, pair)
							i += 6
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = utf8.AppendRune(b, unicode.ReplacementChar)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
	return b
}

// u4 reads the four hex digits of a validated \u escape.
func u4(s []byte) rune {
	return hexValue(s[0])<<12 | hexValue(s[1])<<8 | hexValue(s[2])<<4 | hexValue(s[3])
}

// number scans a number token at pos, as JSON's grammar has it, and returns
// its bytes, valid until the next read.
func (d *decoder) number() []byte {
	d.keep = d.pos
	i := d.pos
	// peek returns the byte at i, or 0 at the end of the input; i stays
	// relative to keep when fill moves the buffer.
	peek := func() byte {
		if i >= d.end {
			off := i - d.keep
			if !d.fill() {
				return 0
			}
			i = d.keep + off
		}
		return d.buf[i]
	}
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	bad := func() {
		c := peek()
		d.pos, d.keep = i, -1
		if i >= d.end {
			d.failEnd()
		}
		d.fail("invalid character %q in number", c)
	}
	if peek() == '-' {
		i++
	}
	switch c := peek(); {
	case c == '0':
		i++
	case isDigit(c):
		for isDigit(peek()) {
			i++
		}
	default:
		bad()
	}
	if peek() == '.' {
		i++
		if !isDigit(peek()) {
			bad()
		}
		for isDigit(peek()) {
			i++
		}
	}
	if c := peek(); c == 'e' || c == 'E' {
		i++
		if c := peek(); c == '+' || c == '-' {
			i++
		}
		if !isDigit(peek()) {
			bad()
		}
		for isDigit(peek()) {
			i++
		}
	}
	tok := d.buf[d.keep:i]
	d.pos, d.keep = i, -1
	return tok
}

// open consumes '{' or '[' and counts the nesting.
func (d *decoder) open() {
	d.depth++
	if d.depth > maxNestingDepth {
		d.fail("exceeded max depth")
	}
	d.pos++
}

// members reads an object's members (pos at '{'), calling member with the
// index in fields of each key (-1 for a key not among them) and pos at its
// value, which member must consume. Keys match exactly or, as with
// encoding/json, case-insensitively.
func (d *decoder) members(fields fieldSet, member func(field int)) {
	d.open()
	d.space()
	if d.next() == '}' {
		d.pos++
		d.depth--
		return
	}
	hint := 0 // answers list a type's fields in one order: the next is likely the one after
	for {
		d.space()
		if d.next() != '"' {
			d.fail("invalid character %q looking for beginning of object key string", d.buf[d.pos])
		}
		// Matched at once: the key's bytes are only valid until the next read.
		field := fields.index(d.stringBytes(), hint)
		if field >= 0 {
			hint = field + 1
		}
		d.space()
		if d.next() != ':' {
			d.fail("invalid character %q after object key", d.buf[d.pos])
		}
		d.pos++
		d.space()
		member(field)
		d.space()
		switch d.next() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return
		default:
			d.fail("invalid character %q after object key:value pair", d.buf[d.pos])
		}
	}
}

// elements reads an array's elements (pos at '['), calling element with
// pos at each, which element must consume.
func (d *decoder) elements(element func()) {
	d.open()
	d.space()
	if d.next() == ']' {
		d.pos++
		d.depth--
		return
	}
	for {
		d.space()
		element()
		d.space()
		switch d.next() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return
		default:
			d.fail("invalid character %q after array element", d.buf[d.pos])
		}
	}
}

// skip reads and validates one value of any kind without keeping it.
func (d *decoder) skip() {
	switch d.next() {
	case '{':
		d.members(nil, func(int) { d.skip() })
	case '[':
		d.elements(d.skip)
	case '"':
		d.rawString()
	case 't':
		d.literal("true")
	case 'f':
		d.literal("false")
	case 'n':
		d.literal("null")
	default:
		d.number()
	}
}

// raw reads one value of any kind and returns a copy of its bytes, as
// json.RawMessage has it.
func (d *decoder) raw() []byte {
	d.hold = d.pos
	d.skip()
	out := append([]byte(nil), d.buf[d.hold:d.pos]...)
	d.hold = -1
	return out
}

// typeError reports a value of the wrong kind for its field.
func (d *decoder) typeError(want string) {
	d.fail("cannot read a value starting with %q as %s", d.buf[d.pos], want)
}

// fieldSet is the JSON names of a type's fields, in the order its reader
// switches on.
type fieldSet []string

// index returns the field a key names, or -1, trying the field at hint
// first. encoding/json prefers an exact match, then takes a case-insensitive
// one (bytes.EqualFold); the names of one type differ case-insensitively,
// so the first match of either kind is the same field.
func (f fieldSet) index(key []byte, hint int) int {
	if hint < len(f) && string(key) == f[hint] {
		return hint
	}
	for i, name := range f {
		if string(key) == name {
			return i
		}
	}
	// A key of ASCII bytes only can fold to a name of its own length only;
	// checking that first keeps unknown keys cheap.
	ascii := true
	for _, c := range key {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	for i, name := range f {
		if (!ascii || len(key) == len(name)) && foldEqual(key, name) {
			return i
		}
	}
	return -1
}

// foldEqual reports whether key equals the ASCII name under Unicode simple
// case folding, as bytes.EqualFold does (so the Kelvin sign matches k).
func foldEqual(key []byte, name string) bool {
	// Every rune that folds to an ASCII letter takes at least a byte.
	if len(key) < len(name) {
		return false
	}
	i := 0
	if len(key) == len(name) {
		for ; i < len(key) && key[i] < utf8.RuneSelf; i++ {
			if foldRune(rune(key[i])) != foldRune(rune(name[i])) {
				return false
			}
		}
	}
	j := i
	for i < len(key) {
		if j == len(name) {
			return false
		}
		r, n := rune(key[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRune(key[i:])
		}
		i += n
		if foldRune(r) != foldRune(rune(name[j])) {
			return false
		}
		j++
	}
	return j == len(name)
}

// foldRune returns the smallest rune of r's case-folding orbit.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// str reads a string field; null leaves it as it was.
func (d *decoder) str(p *string, known ...string) {
	switch d.next() {
	case '"':
		b := d.stringBytes()
		for _, k := range known {
			if string(b) == k {
				// A documented enum value: no copy of its own.
				*p = k
				return
			}
		}
		*p = string(b)
	case 'n':
		d.literal("null")
	default:
		d.typeError("a string")
	}
}

// int64Ptr reads an integer field; null clears it. A fraction, an exponent
// or a value beyond int64 is an error, as with encoding/json.
func (d *decoder) int64Ptr(p **int64) {
	switch c := d.next(); {
	case c == 'n':
		d.literal("null")
		*p = nil
	case c == '-' || '0' <= c && c <= '9':
		start := d.consumed + int64(d.pos)
		v, ok := parseInt64(d.number())
		if !ok {
			panic(decodePanic{&decodeError{offset: start, msg: "number is not a 64-bit integer"}})
		}
		if *p == nil {
			*p = new(int64)
		}
		**p = v
	default:
		d.typeError("an integer")
	}
}

// parseInt64 reads a JSON number token as a whole int64.
func parseInt64(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' || u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return int64(-u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// boolPtr reads a boolean field; null clears it.
func (d *decoder) boolPtr(p **bool) {
	var v bool
	switch d.next() {
	case 't':
		d.literal("true")
		v = true
	case 'f':
		d.literal("false")
	case 'n':
		d.literal("null")
		*p = nil
		return
	default:
		d.typeError("a boolean")
	}
	if *p == nil {
		*p = new(bool)
	}
	**p = v
}

// timestamp reads a timestamp field; null and "" clear it.
func (d *decoder) timestamp(t *Time) {
	switch d.next() {
	case '"':
		start := d.consumed + int64(d.pos)
		v, err := parseTimestamp(string(d.stringBytes()))
		if err != nil {
			panic(decodePanic{&decodeError{offset: start, msg: err.Error(), err: err}})
		}
		t.Time = v
	case 'n':
		d.literal("null")
		t.Time = time.Time{}
	default:
		d.typeError("a timestamp")
	}
}

// object reads an object into a struct through its fields; null leaves the
// struct as it was.
func (d *decoder) object(fields fieldSet, member func(field int)) {
	switch d.next() {
	case '{':
		d.members(fields, member)
	case 'n':
		d.literal("null")
	default:
		d.typeError("an object")
	}
}

// reader is a pointer to a type with a streaming reader.
type reader[T any] interface {
	*T
	readJSON(*decoder)
}

// readPtr reads an optional object: null clears the pointer, anything else
// is read into the object it points to (allocated if needed), so that a
// repeated key adds to the first, as with encoding/json.
func readPtr[T any, P reader[T]](d *decoder, p **T) {
	if d.null() {
		*p = nil
		return
	}
	if *p == nil {
		*p = new(T)
	}
	P(*p).readJSON(d)
}

// readSlice reads an array of objects, reusing the slice's elements the way
// encoding/json does (which only shows with a repeated key): element i is
// read into the existing element i, the slice is cut to the elements read,
// [] is an empty slice and null a nil one.
func readSlice[T any, P reader[T]](d *decoder, s *[]T) {
	switch d.next() {
	case '[':
	case 'n':
		d.literal("null")
		*s = nil
		return
	default:
		d.typeError("an array")
	}
	v := *s
	i := 0
	d.elements(func() {
		if i >= cap(v) {
			v = slices.Grow(v, 1)
		}
		if i >= len(v) {
			v = v[:i+1]
		}
		P(&v[i]).readJSON(d)
		i++
	})
	if i < len(v) {
		v = v[:i]
	}
	if i == 0 {
		v = []T{}
	}
	*s = v
}

// readSliceExact reads an array as readSlice does, but first into scratch
// (kept by the decoder from answer to answer, and zero between uses), then
// into a slice of exactly its length: for the arrays inside answers, which
// are kept until the exposition is written, no growth steps and no unused
// capacity. A slice that holds elements already (a repeated key) is read
// by readSlice, which reuses them as encoding/json does.
func readSliceExact[T any, P reader[T]](d *decoder, s *[]T, scratch *[]T) {
	if *s != nil {
		readSlice[T, P](d, s)
		return
	}
	v := (*scratch)[:0]
	readSlice[T, P](d, &v)
	switch {
	case v == nil:
		*s = nil
	case len(v) == 0:
		*s = []T{}
	default:
		*s = make([]T, len(v))
		copy(*s, v)
		*scratch = v
		clear(v)
	}
}
