package main

import (
	"context"
	"io"
	"log/slog"
)

// newLogger builds the node's logger: slog text (key=value) or JSON (one
// object per line) on w, at the given level. level and format are
// validated with the configuration.
func newLogger(level, format string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated already
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(uniqueKeys{next: h})
}

// uniqueKeys is a slog.Handler that writes each key once per record. Loggers
// are derived in layers (cmd names a component, the component names its
// parts, raft's hclog adapter names its own: "subsystem" is set up to three
// times on one record), and slog's handlers write every attribute they are
// given, so the same key would appear several times: a JSON object with
// duplicate names, which most decoders silently collapse to one.
//
// The last value of a key wins (the innermost, most specific one: a raft
// record says subsystem=raft, not subsystem=election), at the position of
// its first occurrence. Attributes that would collide with the record's
// own time, level, msg and source get an "_attr" suffix.
type uniqueKeys struct {
	next    slog.Handler // the format handler; it gets our attrs only when a group starts
	attrs   []slog.Attr  // from WithAttrs, unique by key
	inGroup bool         // keys are qualified by a group: no clash with time, level, msg
}

func (h uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h uniqueKeys) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return uniqueKeys{next: h.next, attrs: mergeAttrs(h.attrs, as, !h.inGroup), inGroup: h.inGroup}
}

// WithGroup hands the attributes gathered so far to the format handler:
// from here on keys are qualified by the group and cannot clash with them.
// Keys inside the group are kept unique among themselves the same way.
func (h uniqueKeys) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return uniqueKeys{next: h.next.WithAttrs(h.attrs).WithGroup(name), inGroup: true}
}

func (h uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	rec := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		rec = append(rec, a)
		return true
	})
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(mergeAttrs(h.attrs, rec, !h.inGroup)...)
	return h.next.Handle(ctx, out)
}

// mergeAttrs appends add to base (which it does not modify), replacing the
// value of a key already present. Attributes of an inline group (empty
// key) are merged one by one, as the handlers would print them. topLevel
// renames keys that would clash with the record's built-in fields.
func mergeAttrs(base, add []slog.Attr, topLevel bool) []slog.Attr {
	out := append([]slog.Attr(nil), base...)
	var put func(a slog.Attr)
	put = func(a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return
		}
		if a.Key == "" {
			if a.Value.Kind() == slog.KindGroup {
				for _, g := range a.Value.Group() {
					put(g)
				}
			}
			return // an empty key with a plain value is dropped by slog too
		}
		if topLevel {
			switch a.Key {
			case slog.TimeKey, slog.LevelKey, slog.MessageKey, slog.SourceKey:
				a.Key += "_attr"
			}
		}
		for i := range out {
			if out[i].Key == a.Key {
				out[i] = a
				return
			}
		}
		out = append(out, a)
	}
	for _, a := range add {
		put(a)
	}
	return out
}
