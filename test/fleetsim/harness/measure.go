package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// CPUTime is a process's user+system CPU time from /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'. utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// RSS is a process's resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// Conns counts the process's established TCP connections to remote port
// port (the fleet's MySQL port): its socket inodes from /proc/PID/fd,
// matched against /proc/PID/net/tcp.
func Conns(pid, port int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	fh, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	want := fmt.Sprintf(":%04X", port)
	n := 0
	sc := bufio.NewScanner(fh)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 || f[3] != "01" || !strings.HasSuffix(f[2], want) {
			continue
		}
		if inodes[f[9]] {
			n++
		}
	}
	return n, sc.Err()
}

var client = &http.Client{Timeout: 30 * time.Second}

// GetJSON GETs url and decodes a 2xx JSON answer into out (nil: discard).
func GetJSON(url string, out any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		if len(body) > 300 {
			body = body[:300]
		}
		return fmt.Errorf("GET %s: %d: %s", url, resp.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// Metrics reads a node's /metrics: each series by its full name (labels
// included, as printed) and each metric name summed over its labels.
func Metrics(n *Node) (map[string]float64, error) {
	resp, err := client.Get(n.URL("/metrics"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		name := line[:sp]
		out[name] += v // the full series, labels included
		if i := strings.IndexByte(name, '{'); i >= 0 {
			out[name[:i]] += v // and the sum over labels
		}
	}
	return out, sc.Err()
}

// Latency times up to n sequential GETs of url, for at most budget, and
// returns the p99, how many were timed and the size of the last answer.
// Any non-2xx answer is an error.
func Latency(url string, n int, budget time.Duration) (p99 time.Duration, count, size int, err error) {
	var ds []time.Duration
	end := time.Now().Add(budget)
	for len(ds) < n && (len(ds) == 0 || time.Now().Before(end)) {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return 0, 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, 0, 0, err
		}
		if resp.StatusCode/100 != 2 {
			return 0, 0, 0, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
		}
		ds = append(ds, time.Since(start))
		size = len(body)
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, len(ds)*99/100)], len(ds), size, nil
}
