//go:build nemesis_unsafe_nofence

package coordinator

import (
	"fmt"
	"os"
)

// nemesisSkipFence, in this test-only build, skips the fence before a
// promotion, so the nemesis suite can show that its checker catches what
// the fence prevents (test/nemesis: TestUnsafeBuildCaught). Never ship it.
const nemesisSkipFence = true

func init() {
	fmt.Fprintln(os.Stderr, "UNSAFE BUILD: nemesis_unsafe_nofence (the fence before promotion is skipped; for the nemesis suite only)")
}
