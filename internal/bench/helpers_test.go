package bench

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := Summary{N: 100, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (Summary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
}

func TestListeningURL(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"authority", `time=2025-01-01T00:00:00Z level=INFO msg="tegata authority listening" url=http://127.0.0.1:4242 issuer=http://x`, "http://127.0.0.1:4242"},
		{"last attribute", `level=INFO msg="bench upstream listening" url=http://127.0.0.1:80`, "http://127.0.0.1:80"},
		{"quoted", `level=INFO msg=listening url="http://127.0.0.1:1"`, "http://127.0.0.1:1"},
		{"other line", `level=INFO msg="store: Postgres"`, ""},
		{"listening without url", `level=INFO msg="tegata gate listening" addr=127.0.0.1:1`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := listeningURL(tt.line); got != tt.want {
				t.Errorf("listeningURL(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestWithSearchPath(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"url", "postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=s&sslmode=disable"},
		{"url without query", "postgresql://h/db", "postgresql://h/db?search_path=s"},
		{"key=value", "host=h dbname=db", "host=h dbname=db search_path=s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withSearchPath(tt.dsn, "s")
			if err != nil || got != tt.want {
				t.Errorf("withSearchPath(%q) = %q, %v, want %q", tt.dsn, got, err, tt.want)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		name string
		v    float64
		want string
	}{
		{"whole", 2000, "2000"},
		{"small whole", 3, "3"},
		{"hundreds", 1234.56, "1235"},
		{"tens", 12.345, "12.3"},
		{"units", 1.2345, "1.23"},
		{"tiny", 0.001234, "0.00123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatValue(tt.v); got != tt.want {
				t.Errorf("FormatValue(%v) = %q, want %q", tt.v, got, tt.want)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	urls := []string{"a", "b", "c"}
	for i, want := range []string{"abc", "bca", "cab", "abc"} {
		got := ""
		for _, u := range rotate(urls, i) {
			got += u
		}
		if got != want {
			t.Errorf("rotate(abc, %d) = %q, want %q", i, got, want)
		}
	}
}
