package bench_test

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// What memory touched for the first time costs on this machine: a page
// of fresh anonymous memory written once (a minor fault, the kernel
// zeroing the page, and whatever the hypervisor adds) against the same
// pages written again. A node's connecting verifiers and a follower's
// bulk are dominated by the first on a VM where it is dear (docs/scale.md,
// Connecting and the bulk):
//
//	go test -run '^$' -bench FirstTouch -benchtime 20x ./internal/bench
//
// Each reports cpu-µs/page: the process's CPU time (user and system) per
// 4 KiB page written, from getrusage.
func BenchmarkFirstTouch(b *testing.B) {
	const size = 64 << 20
	page := os.Getpagesize()
	pages := size / page
	touch := func(mem []byte) {
		for i := 0; i < len(mem); i += page {
			mem[i] = 1
		}
	}
	mapFresh := func(b *testing.B) []byte {
		mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			b.Fatal(err)
		}
		return mem
	}
	b.Run("fresh", func(b *testing.B) {
		var cpu time.Duration
		for b.Loop() {
			mem := mapFresh(b)
			cpu0 := processCPU(b)
			touch(mem)
			cpu += processCPU(b) - cpu0
			if err := syscall.Munmap(mem); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpu)/float64(b.N*pages)/1e3, "cpu-µs/page")
	})
	b.Run("again", func(b *testing.B) {
		mem := mapFresh(b)
		defer syscall.Munmap(mem)
		touch(mem)
		cpu0 := processCPU(b)
		for b.Loop() {
			touch(mem)
		}
		b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N*pages)/1e3, "cpu-µs/page")
	})
}
