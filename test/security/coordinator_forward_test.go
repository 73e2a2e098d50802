package security

import (
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/test/testutil"
)

// The forward service's header byte (election/mux.go): the attack of
// issue 18 sent it, then JSON, with no credential.
const coordMuxForward byte = 2

// TestCoordinatorForwardWithoutProof replays issue 18's attacks on the
// leader's Raft port of a default group (gossip key, no TLS): a forward
// `apply` that would turn automatic recovery off, a `leave` of a live
// voter, and a 400 MB frame. Each is refused before it is read: no state
// change (read through the API), and the leader's RSS does not grow with
// the frame (it grew from 132 MB to 1.27 GB on landed main).
func TestCoordinatorForwardWithoutProof(t *testing.T) {
	wc, leader := coordGroup(t, testutil.WardenOptions{})
	for _, n := range wc.Nodes {
		testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
			on, err := coordAutomatic(n)
			return err == nil && on, n.ID + ": automatic not yet on"
		})
	}
	var victim *testutil.WardenNode
	for _, n := range wc.Nodes {
		if n != leader {
			victim = n
			break
		}
	}

	t.Run("apply", func(t *testing.T) {
		off := false
		data, err := election.Encode(election.SettingsUpdate{AutomaticRecovery: &off})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := json.Marshal(map[string]any{"op": "apply", "data": data})
		answer, _ := coordSend(t, leader.Raft, append([]byte{coordMuxForward}, append(req, '\n')...), nil)
		if strings.Contains(answer, "index") || strings.Contains(answer, "{") {
			t.Fatalf("the leader answered the unauthenticated apply: %q", answer)
		}
		for _, n := range wc.Nodes {
			on, err := coordAutomatic(n)
			if err != nil || !on {
				t.Fatalf("%s: automatic recovery %v (err %v) after the unauthenticated apply; want it still on", n.ID, on, err)
			}
		}
	})

	t.Run("leave", func(t *testing.T) {
		req, _ := json.Marshal(map[string]any{"op": "leave", "id": victim.ID})
		answer, _ := coordSend(t, leader.Raft, append([]byte{coordMuxForward}, append(req, '\n')...), nil)
		if strings.Contains(answer, "{") {
			t.Fatalf("the leader answered the unauthenticated leave: %q", answer)
		}
		voters, members, err := coordVoters(leader)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(voters)
		if !slices.Equal(voters, []string{"w1", "w2", "w3"}) {
			t.Fatalf("voters after an unauthenticated leave of %s: %v (members %v)", victim.ID, voters, members)
		}
	})

	t.Run("400 MB frame", func(t *testing.T) {
		pid := leader.Proc.Pid()
		before := coordRSS(t, pid)
		const frame = 400 << 20
		sent := 0
		// A valid frame: one JSON object whose data string is 400 MB long.
		flood := func(c net.Conn) error {
			chunk := []byte(strings.Repeat("A", 1<<20))
			for sent = 0; sent < frame; {
				n, err := c.Write(chunk)
				sent += n
				if err != nil {
					return err
				}
			}
			return nil
		}
		// Without the service header first: closed at once. With it but
		// no proof of membership: closed after four bytes. Either way
		// the sender is cut off long before 400 MB.
		answer, writeErr := coordSend(t, leader.Raft, []byte(`{"op":"apply","data":"`), flood)
		if writeErr == nil {
			t.Errorf("the leader read the whole %d MB frame; want it cut off before", frame>>20)
		}
		answer2, writeErr2 := coordSend(t, leader.Raft, append([]byte{coordMuxForward}, `{"op":"apply","data":"`...), flood)
		if writeErr2 == nil {
			t.Errorf("the leader read the whole %d MB forward frame without proof; want it cut off", frame>>20)
		}
		t.Logf("cut off after %d of %d bytes: %v", sent, frame, writeErr2)
		if answer != "" || answer2 != "" {
			t.Errorf("answers %q, %q; want none", answer, answer2)
		}
		after := coordRSS(t, pid)
		t.Logf("leader VmRSS %d MB before, %d MB after", before>>20, after>>20)
		if after-before > 64<<20 {
			t.Fatalf("leader RSS grew by %d MB with an unauthenticated 400 MB frame", (after-before)>>20)
		}
		on, err := coordAutomatic(leader)
		if err != nil || !on {
			t.Fatalf("automatic recovery %v (err %v) after the frame", on, err)
		}
	})

	// The group still works for its members: a forwarded write lands.
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		voters, members, err := coordVoters(leader)
		return err == nil && len(voters) == 3, strings.Join(members, " ")
	})
}
