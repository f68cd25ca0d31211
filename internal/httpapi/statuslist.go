package httpapi

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/statuslist"
)

// StatusLists serves the Token Status Lists (statuslist.Publisher).
type StatusLists interface {
	// Token returns list id's current Status List Token and its exp;
	// statuslist.ErrNoList if there is no such list.
	Token(ctx context.Context, id int64) (string, time.Time, error)
	// URIs lists every list's URI.
	URIs(ctx context.Context) ([]string, error)
}

const statusListType = "application/statuslist+jwt"

// statusList is GET <uri> of draft-ietf-oauth-status-list-21 §8: the
// Status List Token, never older than the revocations committed before the
// request arrived. Clients may cache it until its exp (iat + ttl).
func (s *server) statusList(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Description: "no such status list"}
	}
	if r.URL.Query().Has("time") {
		// §8.4: historical resolution is optional; 501 says it is not offered.
		return &apiError{Status: http.StatusNotImplemented, Code: "not_implemented",
			Description: "historical status lists (the time parameter) are not served"}
	}
	w.Header().Set("Vary", "Accept")
	if !accepts(r.Header.Values("Accept"), statusListType) {
		return &apiError{Status: http.StatusNotAcceptable, Code: "not_acceptable",
			Description: "status lists are served as " + statusListType + " only"}
	}
	tok, exp, err := s.statusLists.Token(r.Context(), id)
	if errors.Is(err, statuslist.ErrNoList) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Description: "no such status list"}
	}
	if err != nil {
		return unavailable("this node cannot read the revocation log right now; try another node", err)
	}
	h := w.Header()
	h.Set("Content-Type", statusListType)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge(exp, s.now())))
	h.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write([]byte(tok))
	return nil
}

// statusListAggregation is the Status List Aggregation (§9.3).
func (s *server) statusListAggregation(w http.ResponseWriter, r *http.Request) error {
	uris, err := s.statusLists.URIs(r.Context())
	if err != nil {
		return unavailable("this node cannot read the status lists right now; try another node", err)
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, map[string][]string{"status_lists": uris})
	return nil
}

// maxAge is the whole seconds from now until exp, at least 0.
func maxAge(exp, now time.Time) int { return max(0, int(exp.Sub(now)/time.Second)) }

func unavailable(desc string, cause error) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Description: desc, Cause: cause, Header: [2]string{"Retry-After", "1"}}
}

// accepts reports whether Accept header values admit mediaType (RFC 9110
// §12.5.1): no header, */*, type/*, or the type itself with a q above 0.
func accepts(values []string, mediaType string) bool {
	if len(values) == 0 {
		return true
	}
	major, _, _ := strings.Cut(mediaType, "/")
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			if mt == "*/*" || mt == major+"/*" || mt == mediaType {
				return true
			}
		}
	}
	return false
}
