package console

import (
	"net/http"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/ssf"
)

// Audit actions the overview and the alerts count.
const (
	actionSessionRevoke  = "session.revoke"
	actionSubjectRevoke  = "subject.revoke"
	actionReuse          = "session.reuse"
	actionBindingFailed  = "session.binding_failed"
	overviewWindow       = time.Hour
	overviewStreamsShown = 20
)

type overviewData struct {
	Issuer, Epoch, NodeID string
	Head                  int64
	Nodes                 []inforce.NodeView
	Revocations, Thefts   int64
	BindingFailures       int64
	Current, Behind       int
	Stale                 int
	Keys                  []authority.KeyInfo
	Streams               []ssf.StreamConfig
	StreamsErr            bool
}

// overview is GET /console/: the cluster at a glance.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, op *operator) error {
	ctx := r.Context()
	d := overviewData{Issuer: c.cfg.Issuer, Epoch: c.cfg.Epoch, NodeID: c.cfg.NodeID}
	l, err := c.cfg.InForce.Current(ctx)
	if err != nil {
		return err
	}
	d.Head, d.Nodes = l.Head, l.Nodes
	for _, v := range l.Verifiers {
		switch v.State {
		case inforce.StateCurrent:
			d.Current++
		case inforce.StateBehind:
			d.Behind++
		default:
			d.Stale++
		}
	}
	counts, err := c.st.AuditCounts(ctx, c.now().Add(-overviewWindow))
	if err != nil {
		return err
	}
	d.Revocations = counts[actionSessionRevoke] + counts[actionSubjectRevoke]
	d.Thefts, d.BindingFailures = counts[actionReuse], counts[actionBindingFailed]
	if d.Keys, err = c.a.Keys(ctx); err != nil {
		return err
	}
	if c.cfg.Streams != nil {
		ss, err := c.cfg.Streams.List(ctx)
		if err != nil {
			c.log.Warn("console: listing event streams failed", "err", err)
			d.StreamsErr = true
		}
		d.Streams = ss[:min(len(ss), overviewStreamsShown)]
	}
	return c.render(w, op, "overview", "Overview", d)
}
