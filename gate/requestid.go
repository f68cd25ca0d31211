package gate

import (
	"net/http"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/requestid"
)

// Every request through the gate has an id (X-Request-Id): one a trusted
// proxy (Config.TrustedProxies) sent, else a new one. It is in the log
// lines about the request (request_id), on the answer, on the request
// passed upstream, and on the calls the gate makes to the authority for
// it (sign-in, refresh, sign-out), whose log lines carry it too.

// withRequestIDs returns a copy of c whose requests carry the id of the
// request they are made for.
func withRequestIDs(c *client.Client) *client.Client {
	out := *c
	hc := http.Client{}
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	hc.Transport = requestid.Transport(hc.Transport)
	out.HTTPClient = &hc
	return &out
}

// dropEchoedID removes the upstream's X-Request-Id from its answer when it
// is the gate's own (an upstream echoing the id it was given): the answer
// already carries it, and the proxy would add it twice.
func dropEchoedID(resp *http.Response) {
	if id := requestid.From(resp.Request.Context()); id != "" && resp.Header.Get(requestid.Header) == id {
		resp.Header.Del(requestid.Header)
	}
}
