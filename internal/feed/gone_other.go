//go:build !unix

package feed

// gone reports false: where no peek is at hand, a client that went away
// is found by the writes that fail.
func (s *rawStream) gone() bool { return false }
