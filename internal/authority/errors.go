package authority

import (
	"errors"
	"fmt"
)

// Error codes of client mistakes. They follow OAuth 2.0 (RFC 6749 §5.2)
// where a code applies.
const (
	CodeInvalidRequest = "invalid_request"
	CodeInvalidGrant   = "invalid_grant"
	CodeNotFound       = "not_found"
	CodeConflict       = "conflict"
)

// Error is a refusal caused by the caller's input. Description is safe to
// show the client; Detail is for logs only (it may say more, e.g. why a
// refresh token was refused) and never contains a secret.
type Error struct {
	Code        string
	Description string
	Detail      string
	// kind is a sentinel the error also matches (ErrReuse).
	kind error
}

// Is reports whether the refusal is of the given kind (e.g. ErrReuse).
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Description, e.Detail)
	}
	return e.Code + ": " + e.Description
}

func invalidRequest(format string, args ...any) error {
	return &Error{Code: CodeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

// ErrReuse marks a refresh refused because the token had already been
// rotated: the session was revoked. Refresh returns an *Error that also
// matches errors.Is(err, ErrReuse).
var ErrReuse = errors.New("authority: refresh token reuse detected")

// ErrUnauthorized: the API key is missing, unknown or lacks the role.
var ErrUnauthorized = errors.New("authority: invalid API key")
