package fleetsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Handler is the control API (JSON over HTTP):
//
//	GET  /fleet                     every instance and cluster, query counters, unknown statements
//	GET  /seeds                     one master address per line
//	GET  /instances/{addr}          one instance
//	POST /instances/{addr}/kill     like kill -9: connection refused
//	POST /instances/{addr}/hang     like SIGSTOP: accepted, never answered
//	POST /instances/{addr}/resume   restart a killed instance, or SIGCONT a hung one
//	POST /instances/{addr}/stop-io  {"errno": 0, "error": ""}: stop the IO thread (with an error if errno != 0)
//	POST /instances/{addr}/stop-sql {"errno": 0, "error": ""}: stop the SQL thread
//	POST /instances/{addr}/lag      {"seconds": 5, "transactions": 0}: the applier stays behind
//
// {addr} is host:port, e.g. 127.1.0.1:3306.
func (f *Fleet) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fleet", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.Snapshot())
	})
	mux.HandleFunc("GET /seeds", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, strings.Join(f.Seeds(), "\n"))
	})
	mux.HandleFunc("GET /instances/{addr}", func(w http.ResponseWriter, r *http.Request) {
		in, err := f.Info(r.PathValue("addr"))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, in)
	})
	mux.HandleFunc("POST /instances/{addr}/{op}", func(w http.ResponseWriter, r *http.Request) {
		addr, op := r.PathValue("addr"), r.PathValue("op")
		var body struct {
			Errno        int     `json:"errno"`
			Error        string  `json:"error"`
			Seconds      float64 `json:"seconds"`
			Transactions int64   `json:"transactions"`
		}
		if r.ContentLength != 0 {
			dec := json.NewDecoder(r.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
				return
			}
		}
		var err error
		switch op {
		case "kill":
			err = f.Kill(addr)
		case "hang":
			err = f.Hang(addr)
		case "resume":
			err = f.Resume(addr)
		case "stop-io":
			err = f.ThreadFault(addr, "io", body.Errno, body.Error)
		case "stop-sql":
			err = f.ThreadFault(addr, "sql", body.Errno, body.Error)
		case "lag":
			err = f.Lag(addr, body.Seconds, body.Transactions)
		default:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("operation %q: want kill, hang, resume, stop-io, stop-sql or lag", op)})
			return
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		in, err := f.Info(addr)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, in)
	})
	return mux
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	if errors.Is(err, ErrNoInstance) {
		code = http.StatusNotFound
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
