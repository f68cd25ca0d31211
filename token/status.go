package token

import (
	"fmt"
	"math"
	"strconv"

	"github.com/tegata-dev/tegata/internal/strictjson"
)

// StatusRef is the "status_list" member of the "status" claim
// (draft-ietf-oauth-status-list-21 §6.2): the token's entry in a Token
// Status List, for Relying Parties that check revocation by fetching the
// list at URI rather than by following tegata's feed.
type StatusRef struct {
	Index int64  // idx: the token's position in the list
	URI   string // uri: where the Status List Token is served
}

// maxStatusIndex keeps idx exact in every JSON implementation (2^53).
const maxStatusIndex = 1 << 53

func appendStatus(b []byte, s *StatusRef) []byte {
	if s == nil {
		return b
	}
	b = strconv.AppendInt(append(b, `,"status":{"status_list":{"idx":`...), s.Index, 10)
	b = appendJSONString(append(b, `,"uri":`...), s.URI)
	return append(b, `}}`...)
}

func checkStatus(s *StatusRef) error {
	if s != nil && (s.Index < 0 || s.Index >= maxStatusIndex || s.URI == "") {
		return fmt.Errorf("%w: status needs a non-negative idx below 2^53 and a uri", ErrClaims)
	}
	return nil
}

// readStatus reads the "status" claim. Mechanisms other than status_list
// are skipped; a status_list without a non-negative integer idx or a
// string uri is refused.
func (c *Claims) readStatus(d *strictjson.Decoder) error {
	v, err := d.Value()
	if err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: status is not an object", ErrClaims)
	}
	sl, present := obj["status_list"]
	if !present {
		return nil
	}
	ref, ok := sl.(map[string]any)
	idx, isNum := ref["idx"].(float64)
	uri, isStr := ref["uri"].(string)
	if !ok || !isNum || !isStr || uri == "" || idx < 0 || idx >= maxStatusIndex || idx != math.Trunc(idx) {
		return fmt.Errorf("%w: status.status_list needs a non-negative integer idx and a uri", ErrClaims)
	}
	c.Status = &StatusRef{Index: int64(idx), URI: uri}
	return nil
}
