//go:build !nemesis_unsafe_nofence

package coordinator

// nemesisSkipFence is false in every real build; see
// unsafe_nofence_nemesis.go.
const nemesisSkipFence = false
