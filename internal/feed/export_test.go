package feed

import "github.com/tegata-dev/tegata/internal/revocation"

// ParseLines reads a revocations event's data, for the tests of package
// feed_test.
func ParseLines(data []byte) ([]revocation.Entry, error) { return parseLines(nil, data) }
