package authority

import (
	"context"
	"errors"
	"testing"

	"github.com/tegata-dev/tegata/internal/store"
)

// TestSubjectWithSurroundingWhitespaceRefused: one subject rule for every
// call that takes a subject. Surrounding whitespace is a slip (a pasted
// line, a padded column): no session can have it, so creating, listing and
// revoking all refuse it with invalid_request, and inner spaces are fine.
func TestSubjectWithSurroundingWhitespaceRefused(t *testing.T) {
	a, _ := newTestAuthority(t)
	ctx := context.Background()
	actor := store.Actor{By: "test"}
	calls := []struct {
		name string
		call func(sub string) error
	}{
		{"CreateSession", func(sub string) error {
			_, err := a.CreateSession(ctx, SessionRequest{Subject: sub})
			return err
		}},
		{"Sessions", func(sub string) error {
			_, err := a.Sessions(ctx, sub)
			return err
		}},
		{"RevokeSubject", func(sub string) error {
			_, err := a.RevokeSubject(ctx, SubjectRevocation{Subject: sub, Actor: actor})
			return err
		}},
		{"Revoke", func(sub string) error {
			_, err := a.Revoke(ctx, []RevokeItem{{Subject: sub}}, actor)
			return err
		}},
	}
	for _, c := range calls {
		for _, sub := range []string{"alice ", " bob", "\tcarol", "dave\u00a0"} {
			var ae *Error
			if err := c.call(sub); !errors.As(err, &ae) || ae.Code != CodeInvalidRequest {
				t.Errorf("%s(%q) = %v, want invalid_request", c.name, sub, err)
			}
		}
		if err := c.call("bob smith"); err != nil {
			t.Errorf("%s(%q) = %v, want nil (inner spaces are fine)", c.name, "bob smith", err)
		}
	}
}
