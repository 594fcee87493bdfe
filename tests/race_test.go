//go:build race

package e2e

// raceEnabled: the test binary, and so the cairn binary, run with -race.
const raceEnabled = true
