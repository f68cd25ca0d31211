package console

import (
	"net/http"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/store"
)

type keysData struct {
	Keys    []authority.KeyInfo
	APIKeys []authority.APIKeyInfo
	// Created is the API key just created, with its secret shown once.
	Created *authority.APIKeyInfo
	Secret  string
	// Confirm is set on the confirmation step of a rotation or revocation.
	Confirm *keyConfirm
	Roles   []string
}

type keyConfirm struct {
	Action string // "rotate" or "revoke"
	ID     string // the API key to revoke
	Name   string
}

func (c *Console) keysData(r *http.Request) (keysData, error) {
	var d keysData
	var err error
	if d.Keys, err = c.a.Keys(r.Context()); err != nil {
		return d, err
	}
	d.APIKeys, err = c.a.APIKeys(r.Context())
	d.Roles = []string{authority.RoleAdmin, authority.RoleGate, authority.RoleFeed}
	return d, err
}

// keys is GET /console/keys: signing keys and API keys.
func (c *Console) keys(w http.ResponseWriter, r *http.Request, op *operator) error {
	d, err := c.keysData(r)
	if err != nil {
		return err
	}
	return c.render(w, op, "keys", "Keys", d)
}

// rotateKey is POST /console/keys/rotate, after a confirmation step.
func (c *Console) rotateKey(w http.ResponseWriter, r *http.Request, op *operator) error {
	if r.PostFormValue("confirmed") != "yes" {
		d, err := c.keysData(r)
		d.Confirm = &keyConfirm{Action: "rotate"}
		if err != nil {
			return err
		}
		return c.render(w, op, "keys", "Rotate the signing key?", d)
	}
	k, err := c.a.RotateKey(r.Context(), authority.UseAccess, op.actor(r.PostFormValue("reason")))
	if err != nil {
		return err
	}
	c.log.Info("console: signing key rotated", "by", op.keyName, "kid", k.ID)
	http.Redirect(w, r, Prefix+"keys", http.StatusSeeOther)
	return nil
}

// createAPIKey is POST /console/apikeys: the page that answers shows the
// new secret, once; it is never stored in the clear.
func (c *Console) createAPIKey(w http.ResponseWriter, r *http.Request, op *operator) error {
	info, secret, err := c.a.CreateAPIKey(r.Context(), r.PostFormValue("name"), r.PostFormValue("role"), op.actor(""))
	if err != nil {
		return err
	}
	c.log.Info("console: API key created", "by", op.keyName, "name", info.Name, "role", info.Role)
	d, err := c.keysData(r)
	if err != nil {
		return err
	}
	d.Created, d.Secret = &info, secret
	return c.render(w, op, "keys", "Keys", d)
}

// revokeAPIKey is POST /console/apikeys/revoke, after a confirmation
// step. The key's console sessions end with it.
func (c *Console) revokeAPIKey(w http.ResponseWriter, r *http.Request, op *operator) error {
	id := r.PostFormValue("id")
	if r.PostFormValue("confirmed") != "yes" {
		d, err := c.keysData(r)
		if err != nil {
			return err
		}
		d.Confirm = &keyConfirm{Action: "revoke", ID: id, Name: r.PostFormValue("name")}
		return c.render(w, op, "keys", "Revoke the API key?", d)
	}
	actor := op.actor(r.PostFormValue("reason"))
	if err := c.a.RevokeAPIKey(r.Context(), id, actor); err != nil {
		return err
	}
	if err := c.endConsoleSessions(r, id, actor); err != nil {
		c.log.Warn("console: ending the revoked key's console sessions failed", "id", id, "err", err)
	}
	c.log.Info("console: API key revoked", "by", op.keyName, "id", id)
	http.Redirect(w, r, Prefix+"keys", http.StatusSeeOther)
	return nil
}

// endConsoleSessions signs the key's console sessions out everywhere, if
// it has any (the verifiers refuse them at once; a refresh would find the
// key revoked anyway).
func (c *Console) endConsoleSessions(r *http.Request, keyID string, actor store.Actor) error {
	ss, err := c.a.Sessions(r.Context(), SubjectPrefix+keyID)
	if err != nil || len(ss) == 0 {
		return err
	}
	_, err = c.a.RevokeSubject(r.Context(), authority.SubjectRevocation{Subject: SubjectPrefix + keyID, Actor: actor})
	return err
}
