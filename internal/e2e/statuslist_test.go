package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/statuslist"
	"github.com/tegata-dev/tegata/token"
)

// TestStatusListOnEveryNode: a status list fetched from any node right
// after a revoke call returned on another node shows the revocation — no
// waiting, no retry: each fetch reads the log head first.
func TestStatusListOnEveryNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	toks := c.sessions(20, "sl-")
	for i, tk := range toks {
		revoker, reader := i%2, (i+1)%2
		if _, err := c.client(revoker).RevokeSession(context.Background(), client.SessionRevocation{SessionID: tk.SessionID, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		if s := c.tokenStatus(t, reader, tk.AccessToken); s != statuslist.Invalid {
			t.Fatalf("token %d revoked on node %d: node %d's list says %d, want INVALID at once", i, revoker, reader, s)
		}
		if i+1 < len(toks) {
			if s := c.tokenStatus(t, reader, toks[i+1].AccessToken); s != statuslist.Valid {
				t.Fatalf("token %d (not revoked yet): node %d's list says %d, want VALID", i+1, reader, s)
			}
		}
	}
}

// tokenStatus fetches the list of an access token from node i (the path of
// the token's uri, since the cluster's issuer is not a real host).
func (c *cluster) tokenStatus(t *testing.T, i int, at string) byte {
	t.Helper()
	_, payload, err := token.Inspect(at)
	if err != nil {
		t.Fatal(err)
	}
	sl := payload["status"].(map[string]any)["status_list"].(map[string]any)
	u, err := url.Parse(sl["uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, c.url(i)+u.Path, nil)
	req.Header.Set("Accept", "application/statuslist+jwt")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s on node %d = %d %s", u.Path, i, res.StatusCode, body)
	}
	_, claims, err := token.Inspect(string(body))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Bits int    `json:"bits"`
		Lst  string `json:"lst"`
	}
	b, _ := json.Marshal(claims["status_list"])
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	l, err := statuslist.Decode(list.Bits, list.Lst)
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Get(int(sl["idx"].(float64)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
