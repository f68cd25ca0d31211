package cli

import "testing"

// TestOffFloat: the flag writes the config rule's values itself (0 or off
// is the negative "off", a rate is kept), refuses what no config takes,
// and shows the default while the field is zero.
func TestOffFloat(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"0", -1, false},
		{"off", -1, false},
		{"2.5", 2.5, false},
		{"-1", 0, true},
		{"NaN", 0, true},
		{"+Inf", 0, true},
		{"lots", 0, true},
	} {
		var x float64
		f := offFloat{&x, 10}
		err := f.Set(tc.in)
		if (err != nil) != tc.wantErr || x != tc.want {
			t.Errorf("Set(%q) = %v, field %v; want error %v, field %v", tc.in, err, x, tc.wantErr, tc.want)
		}
	}
	var x float64
	if got := (offFloat{&x, 10}).String(); got != "10" {
		t.Errorf("String() of a zero field = %q, want the default 10", got)
	}
	x = -1
	if got := (offFloat{&x, 10}).String(); got != "off" {
		t.Errorf("String() of a negative field = %q, want off", got)
	}
}
