package peaka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
)

// Reason classifies why a call failed. The set is fixed so that it can be a
// label value.
type Reason string

const (
	ReasonTimeout      Reason = "timeout"
	ReasonNetwork      Reason = "network"
	ReasonUnauthorized Reason = "unauthorized"
	ReasonForbidden    Reason = "forbidden"
	ReasonNotFound     Reason = "not_found"
	ReasonRateLimited  Reason = "rate_limited"
	ReasonServerError  Reason = "server_error"
	ReasonBadResponse  Reason = "bad_response"
)

// Reasons lists every Reason, for pre-initialising counters.
var Reasons = []Reason{
	ReasonTimeout, ReasonNetwork, ReasonUnauthorized, ReasonForbidden,
	ReasonNotFound, ReasonRateLimited, ReasonServerError, ReasonBadResponse,
}

// Error is a failed API call. Its text names the call's route template and
// the object IDs but never the key, a query string or the body verbatim.
type Error struct {
	Endpoint   string // route template, e.g. "/data/projects/{projectId}/exports/{exportId}"
	Target     string // the IDs the call was about, e.g. "project mtKDhe1U cache 960b…"
	StatusCode int    // 0 when no HTTP answer arrived
	Reason     Reason
	Message    string // a short, redacted description
	RetryAfter string // the Retry-After header of a 429/503, if any
	Err        error  // the underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("GET ")
	b.WriteString(e.Endpoint)
	if e.Target != "" {
		b.WriteString(" (")
		b.WriteString(e.Target)
		b.WriteString(")")
	}
	b.WriteString(": ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d: ", e.StatusCode)
	}
	b.WriteString(e.Message)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf classifies any error returned by the client. Errors that did not
// come from the client (or nil) are classified by their type alone.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return classifyTransport(err)
}

func reasonForStatus(code int) Reason {
	switch {
	case code == http.StatusUnauthorized:
		return ReasonUnauthorized
	case code == http.StatusForbidden:
		return ReasonForbidden
	case code == http.StatusNotFound:
		return ReasonNotFound
	case code == http.StatusTooManyRequests:
		return ReasonRateLimited
	case code >= 500:
		return ReasonServerError
	default:
		return ReasonBadResponse
	}
}

// classifyTransport sorts errors that happened before or while reading an
// answer: deadlines into timeout, everything else on the wire into network.
func classifyTransport(err error) Reason {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonNetwork
}

// permanentNetworkError reports connection errors that trying again will
// not heal: a name that does not resolve, a certificate that is not
// trusted, a server that does not speak TLS or refuses the handshake.
func permanentNetworkError(err error) bool {
	var (
		dnsErr    *net.DNSError
		certErr   *tls.CertificateVerificationError
		unkAuth   x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invErr    x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
	)
	switch {
	case errors.As(err, &dnsErr):
		return dnsErr.IsNotFound
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr),
		errors.As(err, &invErr), errors.As(err, &recordErr), errors.As(err, &alertErr):
		return true
	}
	// The client turns the tls.RecordHeaderError of a plain HTTP server
	// into http.ErrSchemeMismatch, as http.Client does.
	return errors.Is(err, http.ErrSchemeMismatch)
}

// describeTransport gives a short description without the request URL
// (url.Error repeats the query string).
func describeTransport(err error) string {
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "request canceled"
	case errors.As(err, &dnsErr):
		return "DNS lookup failed: " + dnsErr.Err
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr):
		return "TLS certificate verification failed"
	case errors.As(err, &opErr):
		if opErr.Err != nil {
			return opErr.Op + ": " + opErr.Err.Error()
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	// url.Error's text is "Get \"URL\": cause"; keep the cause only.
	msg := err.Error()
	if i := strings.LastIndex(msg, "\": "); i >= 0 {
		msg = msg[i+3:]
	}
	return msg
}

var (
	emailPattern  = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
	urlPattern    = regexp.MustCompile(`https?://\S+`)
	bearerPattern = regexp.MustCompile(`(?i)bearer\s+\S+`)
	// Signed-URL parameters without their scheme, which urlPattern misses:
	// "bucket.s3.amazonaws.com/f?X-Amz-Signature=…".
	signedPattern = regexp.MustCompile(`\S*(?i:x-amz-|x-goog-|[?&](?:signature|sig|token|key|access_token)=)\S*`)
)

// errorMessage extracts a short human message from an error body. Error
// bodies vary on the live service (two JSON shapes, HTML on some 500s).
// E-mail addresses, URLs and bearer tokens are redacted: the text may end
// up in logs.
func errorMessage(body []byte, contentType string) string {
	var fields struct {
		Message string `json:"message"`
		Error   any    `json:"error"`
	}
	msg := ""
	if json.Unmarshal(body, &fields) == nil {
		msg = fields.Message
		if s, ok := fields.Error.(string); ok && msg == "" {
			msg = s
		}
	} else if strings.Contains(contentType, "html") || strings.HasPrefix(strings.TrimSpace(string(body)), "<") {
		msg = "HTML error page"
	}
	return redact(msg)
}

func redact(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = bearerPattern.ReplaceAllString(s, "Bearer <redacted>")
	s = urlPattern.ReplaceAllString(s, "<url>")
	s = signedPattern.ReplaceAllString(s, "<redacted>")
	s = emailPattern.ReplaceAllString(s, "<email>")
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, 200)
}
