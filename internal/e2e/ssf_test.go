package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/token"
)

// jtiReceiver records the jti of every SET pushed to it.
type jtiReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	jtis []string
}

func newJTIReceiver(t *testing.T) *jtiReceiver {
	rx := &jtiReceiver{}
	rx.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, claims, err := token.Inspect(string(body))
		if err != nil {
			http.Error(w, `{"err":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		rx.mu.Lock()
		rx.jtis = append(rx.jtis, claims["jti"].(string))
		rx.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rx.Close)
	return rx
}

func (rx *jtiReceiver) got() []string {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return slices.Clone(rx.jtis)
}

// distinct is how many different SETs arrived: a node stopped between
// delivering an event and recording it leaves the event to be sent again.
func (rx *jtiReceiver) distinct() int {
	jtis := rx.got()
	slices.Sort(jtis)
	return len(slices.Compact(jtis))
}

// TestSSFPushAcrossNodes: two authority nodes share one push stream; each
// event reaches the receiver once, in log order, whichever node delivers,
// including when the delivering node stops half-way.
func TestSSFPushAcrossNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	rx := newJTIReceiver(t)
	st, err := c.client(0).CreateStream(context.Background(), client.NewStream{PushURL: rx.URL})
	if err != nil {
		t.Fatal(err)
	}
	toks := c.sessions(40, "ssf-")
	revoke := func(from, to int, nodes ...int) {
		for i := from; i < to; i++ {
			if _, err := c.client(nodes[i%len(nodes)]).RevokeSession(context.Background(), client.SessionRevocation{SessionID: toks[i].SessionID, Reason: ""}); err != nil {
				t.Fatal(err)
			}
		}
	}
	revoke(0, 20, 0, 1)
	eventually(t, 20*time.Second, "first 20 delivered", func() error {
		if n := len(rx.got()); n < 20 {
			return fmt.Errorf("%d SETs", n)
		}
		return nil
	})
	c.stop(0)
	revoke(20, 40, 1)
	eventually(t, 20*time.Second, "all 40 delivered by the remaining node", func() error {
		if n := rx.distinct(); n < 40 {
			return fmt.Errorf("%d different SETs", n)
		}
		return nil
	})
	var seqs []int64
	for _, jti := range rx.got() {
		seq, err := strconv.ParseInt(strings.TrimPrefix(jti, st.ID+"."), 10, 64)
		if err != nil {
			t.Fatalf("jti %q is not <stream>.<seq>", jti)
		}
		seqs = append(seqs, seq)
	}
	if !slices.IsSorted(seqs) {
		t.Errorf("SETs arrived out of log order: %v", seqs)
	}
	if compact := slices.Compact(slices.Clone(seqs)); len(compact) != 40 || len(seqs) > 41 {
		b, _ := json.Marshal(seqs)
		t.Errorf("received %d SETs for %d events (%s): want each once, at most one sent again at the stop", len(seqs), len(compact), b)
	}
}
