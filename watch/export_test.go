package watch

// QueuedBytes is the bytes of events queued on s, for tests of its bound.
func (s *Stream) QueuedBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.qBytes
}
