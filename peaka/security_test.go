package peaka_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peakacom/peaka_exporter/peaka"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

// The client never follows a redirect: the key rides in a header, and the
// redirect's target is not the configured base URL.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []string
		hits int
	)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		if a := r.Header.Get("Authorization"); a != "" {
			got = append(got, a)
		}
		mu.Unlock()
		_, _ = w.Write([]byte(`{"id":"x"}`))
	}))
	t.Cleanup(elsewhere.Close)

	for _, code := range []int{301, 302, 303, 307, 308} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, code)
		}))
		c := newClient(t, redirector.URL)
		_, err := c.Export(context.Background(), "p", "x")
		redirector.Close()
		var e *peaka.Error
		if !errors.As(err, &e) || e.StatusCode != code || e.Reason != peaka.ReasonBadResponse {
			t.Errorf("%d: %v, want a bad_response error with the status", code, err)
			continue
		}
		if strings.Contains(err.Error(), elsewhere.URL) || strings.Contains(err.Error(), key) {
			t.Errorf("%d: error names the target or the key: %v", code, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 || len(got) != 0 {
		t.Errorf("the redirect target got %d requests, Authorization headers %q", hits, got)
	}
}

// selfSigned returns a certificate for the given names (and 127.0.0.1) that
// is its own CA, and its PEM.
func selfSigned(t *testing.T, names ...string) (tls.Certificate, []byte) {
	t.Helper()
	c, err := peakatest.NewCertificate(names...)
	if err != nil {
		t.Fatal(err)
	}
	return c.TLS, c.CertPEM
}

func tlsSim(t *testing.T, cert tls.Certificate) (*peakatest.Sim, *httptest.Server) {
	t.Helper()
	sim := peakatest.New(peakatest.Options{Seed: 5})
	sim.AddPartnerKey(key, "owner")
	sim.AddCache("p", peakatest.Cache{ID: "c", TableName: "t"})
	srv := httptest.NewUnstartedServer(sim)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	return sim, srv
}

// Certificates are verified by default; CACerts adds trusted roots.
func TestTLSVerificationAndCACerts(t *testing.T) {
	cert, caPEM := selfSigned(t, "localhost")
	sim, srv := tlsSim(t, cert)

	c := newClient(t, srv.URL)
	_, err := c.CacheStatus(context.Background(), "p", "c", true)
	if peaka.ReasonOf(err) != peaka.ReasonNetwork || !strings.Contains(err.Error(), "TLS certificate verification failed") {
		t.Errorf("untrusted certificate: %v, want a network error naming TLS verification", err)
	}
	if n := sim.TotalRequests(); n != 0 {
		t.Errorf("%d requests reached the server through an untrusted certificate", n)
	}

	c = newClient(t, srv.URL, func(o *peaka.Options) { o.CACerts = caPEM })
	if _, err := c.CacheStatus(context.Background(), "p", "c", true); err != nil {
		t.Errorf("with the CA trusted: %v", err)
	}

	// The system roots stay trusted next to the extra CA; a certificate
	// for another name is still refused.
	_, otherPEM := selfSigned(t, "other.invalid")
	c = newClient(t, srv.URL, func(o *peaka.Options) { o.CACerts = otherPEM })
	if _, err := c.CacheStatus(context.Background(), "p", "c", true); peaka.ReasonOf(err) != peaka.ReasonNetwork {
		t.Errorf("with an unrelated CA: %v, want network", err)
	}

	u, _ := url.Parse(srv.URL)
	if _, err := peaka.New(peaka.Options{BaseURL: u, CACerts: []byte("not PEM")}); err == nil {
		t.Error("CACerts without a certificate accepted")
	}
	if _, err := peaka.New(peaka.Options{BaseURL: u, CACerts: caPEM, Transport: http.DefaultTransport}); err == nil {
		t.Error("CACerts with a caller's transport accepted")
	}
}

// The client's transport honours HTTPS_PROXY. net/http reads the proxy
// variables once per process, so the client runs in a child process (this
// test binary again) with the variables set; the parent runs the proxy and
// a TLS simulator whose certificate is for peaka-api.invalid, a name only
// the proxy can reach.
func TestHTTPSProxyFromTheEnvironment(t *testing.T) {
	if os.Getenv("PEAKA_PROXY_CHILD") != "" {
		proxyChild(t)
		return
	}
	cert, caPEM := selfSigned(t, "peaka-api.invalid")
	_, srv := tlsSim(t, cert)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		connects []string
	)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	target := srv.Listener.Addr().String()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return // closed
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(time.Minute))
				br := bufio.NewReader(conn)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				mu.Lock()
				connects = append(connects, req.Method+" "+req.Host+" auth="+req.Header.Get("Authorization"))
				mu.Unlock()
				if req.Method != http.MethodConnect {
					_, _ = io.WriteString(conn, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
					return
				}
				up, err := net.DialTimeout("tcp", target, 10*time.Second)
				if err != nil {
					_, _ = io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
					return
				}
				defer up.Close()
				_ = up.SetDeadline(time.Now().Add(time.Minute))
				_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, br); done <- struct{}{} }()
				go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHTTPSProxyFromTheEnvironment$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"PEAKA_PROXY_CHILD=1",
		"PEAKA_PROXY_CA="+caFile,
		"HTTPS_PROXY=http://"+l.Addr().String(),
		"https_proxy=",
		"NO_PROXY=", "no_proxy=",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(connects) == 0 || !strings.HasPrefix(connects[0], "CONNECT peaka-api.invalid:443 ") {
		t.Errorf("proxy saw %q, want CONNECT peaka-api.invalid:443", connects)
	}
	for _, c := range connects {
		if strings.Contains(c, key) {
			t.Errorf("the key reached the proxy in the clear: %q", c)
		}
	}
}

func proxyChild(t *testing.T) {
	ca, err := os.ReadFile(os.Getenv("PEAKA_PROXY_CA"))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, "https://peaka-api.invalid/api/v1", func(o *peaka.Options) { o.CACerts = ca })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.CacheStatus(ctx, "p", "c", true)
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if s.ID != "c" {
		t.Errorf("answer %+v", s)
	}
}
