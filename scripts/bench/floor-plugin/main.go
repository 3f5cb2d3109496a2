// floor-plugin is the least a GOCACHEPROG plugin can do for a warm build,
// used by scripts/bench/local.ts to measure what the protocol round trip
// alone costs on this machine: one goroutine, no puts (it declares only get
// and close, so the go command never sends any), no mtime refresh, no
// checks beyond what it needs to answer. It reads the entries the go
// command itself wrote in $GOCACHE (Go's "v1 <action> <output> <size>
// <nanos>" format, outputs in <xx>/<output>-d). Not a cache to use: it
// never stores anything.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type request struct {
	ID       int64
	Command  string
	ActionID []byte
}

type response struct {
	ID            int64
	Err           string     `json:",omitempty"`
	KnownCommands []string   `json:",omitempty"`
	Miss          bool       `json:",omitempty"`
	OutputID      []byte     `json:",omitempty"`
	Size          int64      `json:",omitempty"`
	Time          *time.Time `json:",omitempty"`
	DiskPath      string     `json:",omitempty"`
}

func main() {
	dir := os.Getenv("GOCACHE")
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	answer := func(r response) {
		enc.Encode(r)
		w.Flush()
	}
	answer(response{KnownCommands: []string{"get", "close"}})
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	buf := make([]byte, 256)
	for {
		var r request
		if err := dec.Decode(&r); err != nil {
			return
		}
		switch r.Command {
		case "get":
			answer(get(dir, buf, r))
		case "close":
			answer(response{ID: r.ID})
			return
		default:
			answer(response{ID: r.ID, Err: "floor-plugin: only get and close"})
		}
	}
}

func get(dir string, buf []byte, r request) response {
	miss := response{ID: r.ID, Miss: true}
	h := hex.EncodeToString(r.ActionID)
	if len(h) < 2 {
		return miss
	}
	f, err := os.Open(filepath.Join(dir, h[:2], h+"-a"))
	if err != nil {
		return miss
	}
	n, _ := f.Read(buf)
	f.Close()
	fs := strings.Fields(string(buf[:n]))
	if len(fs) != 5 || fs[0] != "v1" || fs[1] != h {
		return miss
	}
	out, err1 := hex.DecodeString(fs[2])
	size, err2 := strconv.ParseInt(fs[3], 10, 64)
	nanos, err3 := strconv.ParseInt(fs[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(fs[2]) < 2 {
		return miss
	}
	t := time.Unix(0, nanos)
	return response{ID: r.ID, OutputID: out, Size: size, Time: &t, DiskPath: filepath.Join(dir, fs[2][:2], fs[2]+"-d")}
}
