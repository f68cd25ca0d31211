package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestScratchAuthority(t *testing.T) {
	if os.Getenv("SCRATCH") != "authority" {
		t.Skip()
	}
	r, err := Authority(context.Background(), AuthorityConfig{Setup: Setup{Progress: os.Stderr}, Phase: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.WriteText(os.Stdout)
}
