package authority

import (
	"context"
	"fmt"

	"github.com/tegata-dev/tegata/internal/store"
)

// reseal re-seals under the master key what the store keeps sealed under
// one of Config.OtherMasterKeys: the step of a master key rotation that
// lets the old key be dropped. It refuses a value no key given opens.
func (a *Authority) reseal(ctx context.Context) error {
	vs, err := a.store.SealedValues(ctx)
	if err != nil {
		return fmt.Errorf("authority: reseal: %w", err)
	}
	var todo []store.SealedValue
	for _, v := range vs {
		s := a.keySealer
		if v.Kind == store.SealedStreamAuth {
			s = a.rxSealer
		}
		pt, which, err := s.openWhich(v.Sealed, []byte(v.ID))
		if err != nil {
			return fmt.Errorf("authority: reseal: %s %s: %w", v.Kind, v.ID, err)
		}
		if which != 0 {
			v.New = s.seal(pt, []byte(v.ID))
			todo = append(todo, v)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	n, err := a.store.Reseal(ctx, todo)
	if err != nil {
		return fmt.Errorf("authority: reseal: %w", err)
	}
	a.log.Info("master key rotation: re-sealed under the master key what another one had sealed", "values", n)
	return nil
}
