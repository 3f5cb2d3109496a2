// A Go HTTP client for the reverse-proxy tests: fetches each URL given as
// an argument through the proxy named by HTTPS_PROXY (or HTTP_PROXY for
// http:// URLs), trusting the roots in SSL_CERT_FILE (Go reads it on
// Linux), and prints one JSON line per URL:
//
//	{"url":..., "status":200, "xCache":"hit, local", "size":N,
//	 "sha256":"...", "issuer":"O=gostash, CN=..."}
//
// issuer is the issuer of the certificate the server presented (empty for
// http://), so a test can tell a terminated CONNECT (gostash's CA) from a
// tunnelled one (the origin's own certificate).
//
// Go's http.ProxyFromEnvironment never proxies localhost and loopback
// addresses, and the test origin is on localhost, so the proxy URL is read
// from the environment here and used for every request.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

type result struct {
	URL    string `json:"url"`
	Status int    `json:"status"`
	XCache string `json:"xCache"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Issuer string `json:"issuer"`
	Error  string `json:"error,omitempty"`
}

func proxyFor(req *http.Request) (*url.URL, error) {
	name := "HTTP_PROXY"
	if req.URL.Scheme == "https" {
		name = "HTTPS_PROXY"
	}
	v := os.Getenv(name)
	if v == "" {
		v = os.Getenv(strings.ToLower(name))
	}
	if v == "" {
		return nil, nil
	}
	return url.Parse(v)
}

func fetch(client *http.Client, u string) result {
	r := result{URL: u}
	resp, err := client.Get(u)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		r.Error = err.Error()
	}
	r.Status, r.Size, r.SHA256, r.XCache = resp.StatusCode, n, hex.EncodeToString(h.Sum(nil)), resp.Header.Get("X-Cache")
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		r.Issuer = resp.TLS.PeerCertificates[0].Issuer.String()
	}
	return r
}

func main() {
	client := &http.Client{
		Timeout:   5 * time.Minute,
		Transport: &http.Transport{Proxy: proxyFor, ForceAttemptHTTP2: true},
	}
	enc := json.NewEncoder(os.Stdout)
	failed := false
	for _, u := range os.Args[1:] {
		r := fetch(client, u)
		failed = failed || r.Error != ""
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	if failed {
		os.Exit(1)
	}
}
