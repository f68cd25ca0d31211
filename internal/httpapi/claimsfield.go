package httpapi

import "encoding/json"

// claimsField is the optional "claims" member of a subject revocation:
// nil when absent (the claims stay), otherwise the claims that replace
// them. null and {} both clear them, so it is never nil when present: a
// *map would read null as absent and keep claims the caller asked to
// clear. json calls UnmarshalJSON for null too, because the type has its
// own method.
type claimsField map[string]any

func (c *claimsField) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		m = map[string]any{}
	}
	*c = m
	return nil
}
