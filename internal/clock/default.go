//go:build !nemesis_clock

package clock

import "time"

// Jumpable is false: this build's Now is time.Now and nothing moves it.
const Jumpable = false

// Now returns time.Now().
func Now() time.Time { return time.Now() }
