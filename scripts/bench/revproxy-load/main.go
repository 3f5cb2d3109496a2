// The load client of scripts/bench/revproxy.ts: fetches one URL n times
// with c workers (each on its own kept-alive connection), through the
// proxy in HTTPS_PROXY (or none when it is empty: straight to the origin),
// trusting the roots in SSL_CERT_FILE, reading and discarding every body.
// Prints one JSON line: requests, bytes, seconds, per-request latency
// quantiles (ms), and the X-Cache values seen.
//
// The proxy is read from the environment here because Go's
// ProxyFromEnvironment never proxies localhost, where the bench's origin is.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 100, "requests")
	c := flag.Int("c", 1, "concurrent workers")
	flag.Parse()
	target := flag.Arg(0)
	var proxy func(*http.Request) (*url.URL, error)
	if p := os.Getenv("HTTPS_PROXY"); p != "" {
		u, err := url.Parse(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		proxy = http.ProxyURL(u)
	}
	tr := &http.Transport{Proxy: proxy, MaxIdleConnsPerHost: *c, ForceAttemptHTTP2: false}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	lat := make([]float64, *n)
	xcache := map[string]int{}
	var mu sync.Mutex
	var bytes int64
	var failed error
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				resp, err := client.Get(target)
				if err == nil {
					var k int64
					k, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					mu.Lock()
					bytes += k
					xcache[resp.Header.Get("X-Cache")]++
					mu.Unlock()
				}
				lat[i] = float64(time.Since(t0).Microseconds()) / 1000
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < *n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	secs := time.Since(start).Seconds()
	if failed != nil {
		fmt.Fprintln(os.Stderr, "revproxy-load:", failed)
		os.Exit(1)
	}
	sort.Float64s(lat)
	q := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))] }
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"requests": *n, "bytes": bytes, "seconds": secs,
		"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "xCache": xcache,
	})
}
