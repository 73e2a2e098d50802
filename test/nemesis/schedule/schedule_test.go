package schedule

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGenerateIsReplayable(t *testing.T) {
	cfg := Default(2 * time.Minute)
	a, err := Generate(42, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(42, cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different schedules:\n%s\n%s", Format(42, a), Format(42, b))
	}
	c, _ := Generate(43, cfg)
	if reflect.DeepEqual(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same schedule:\n%s", Format(42, a))
	}
}

func TestGenerateShape(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		cfg := Default(90 * time.Second)
		evs, err := Generate(seed, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) < 4 {
			t.Fatalf("seed %d: only %d events in 90 s:\n%s", seed, len(evs), Format(seed, evs))
		}
		prevHeal := time.Duration(0)
		for i, e := range evs {
			b := bounds[e.Nemesis]
			switch {
			case i == 0 && e.At != cfg.Warmup:
				t.Fatalf("seed %d: first fault at %s, want the warm-up %s", seed, e.At, cfg.Warmup)
			case i > 0 && (e.At-prevHeal < cfg.MinGap || e.At-prevHeal > cfg.MaxGap):
				t.Fatalf("seed %d: event %d starts %s after the previous heal, want %s..%s", seed, i, e.At-prevHeal, cfg.MinGap, cfg.MaxGap)
			case e.Heal() > cfg.Length:
				t.Fatalf("seed %d: event %d heals at %s, after the %s window", seed, i, e.Heal(), cfg.Length)
			case e.Duration < b.min || e.Duration > b.max:
				t.Fatalf("seed %d: %s lasts %s, want %s..%s", seed, e.Nemesis, e.Duration, b.min, b.max)
			case b.paramHi > b.paramLo && (e.Param < b.paramLo || e.Param > b.paramHi):
				t.Fatalf("seed %d: %s param %d, want %d..%d", seed, e.Nemesis, e.Param, b.paramLo, b.paramHi)
			case b.paramHi == b.paramLo && e.Param != 0:
				t.Fatalf("seed %d: %s has param %d", seed, e.Nemesis, e.Param)
			}
			prevHeal = e.Heal()
		}
	}
}

// A deck deals every nemesis once before any repeats.
func TestGenerateDealsEveryNemesisBeforeRepeating(t *testing.T) {
	evs, err := Generate(7, Config{Length: time.Hour, MinGap: time.Second, MaxGap: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Nemesis]int{}
	for _, e := range evs[:len(All)] {
		seen[e.Nemesis]++
	}
	for _, n := range All {
		if seen[n] != 1 {
			t.Fatalf("first %d events: %s dealt %d times, want 1:\n%s", len(All), n, seen[n], Format(7, evs[:len(All)]))
		}
	}
}

func TestGenerateOnlyChosenNemeses(t *testing.T) {
	evs, err := Generate(1, Config{Length: time.Minute, Nemeses: []Nemesis{KillMaster}, MinGap: time.Second, MaxGap: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Nemesis != KillMaster {
			t.Fatalf("got %s, asked only for kill-master", e.Nemesis)
		}
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Length"},
		{Config{Length: time.Minute, Warmup: -1}, "Warmup"},
		{Config{Length: time.Minute, MinGap: 2, MaxGap: 1}, "MinGap"},
		{Config{Length: time.Minute, Nemeses: []Nemesis{"flood"}}, `"flood"`},
	} {
		_, err := Generate(1, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %s", c.cfg, err, c.want)
		}
	}
	if _, err := Parse("kill-master,flood"); err == nil || !strings.Contains(err.Error(), `"flood"`) {
		t.Errorf("Parse: %v", err)
	}
	if ns, err := Parse("all"); err != nil || len(ns) != len(All) {
		t.Errorf("Parse(all) = %v, %v", ns, err)
	}
}

func TestEveryNemesisHasBounds(t *testing.T) {
	for _, n := range All {
		if b, ok := bounds[n]; !ok || b.min <= 0 || b.max < b.min {
			t.Errorf("%s: bounds %+v", n, b)
		}
	}
}

// Clock jumps are seconds to hours, both ways, and each sign and decade
// shows up.
func TestClockJumpSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var neg, pos int
	decades := map[int]int{}
	for range 2000 {
		s := clockJump(rng)
		a := s
		if a < 0 {
			a, neg = -a, neg+1
		} else {
			pos++
		}
		if a < minClockJump || a > maxClockJump {
			t.Fatalf("jump %d s outside %d..%d", s, minClockJump, maxClockJump)
		}
		decades[len(strconv.Itoa(a))]++
	}
	if neg < 800 || pos < 800 {
		t.Fatalf("%d backward, %d forward jumps of 2000", neg, pos)
	}
	for d := 1; d <= 4; d++ { // 5 digits: only 10000..10800
		if decades[d] < 50 || decades[5] == 0 {
			t.Fatalf("jumps of %d digit(s): %d of 2000 (%v)", d, decades[d], decades)
		}
	}
}
