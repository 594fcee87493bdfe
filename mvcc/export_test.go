package mvcc

// SetCompactionMode forces how compactions visit their keys ("events",
// "scan", or "auto" to choose per compaction) and returns a function that
// restores the previous mode. For benchmarks in package mvcc_test.
func SetCompactionMode(mode string) (restore func()) {
	prev := compactionMode
	compactionMode = map[string]int{"auto": compactAuto, "events": compactByEvents, "scan": compactByScan}[mode]
	return func() { compactionMode = prev }
}
