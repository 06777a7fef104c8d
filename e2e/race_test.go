//go:build race

package e2e

// The race detector slows everything several times over: run smaller fleets.
func init() { fleetSize = 200 }
