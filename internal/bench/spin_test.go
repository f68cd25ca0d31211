package bench_test

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// spinEnv makes the test binary a process that burns the CPU seconds the
// variable holds (user and system time, as /proc counts them), then says
// "spun" on its standard error and waits to be stopped: a child whose CPU
// time a test knows a lower bound of.
const spinEnv = "TEGATA_BENCH_SPIN"

func spin(spec string) {
	want, err := strconv.ParseFloat(spec, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "spin:", err)
		os.Exit(2)
	}
	x := 0
	for cpuSeconds() < want {
		for i := range 1_000_000 {
			x ^= i
		}
	}
	fmt.Fprintln(os.Stderr, "spun", x&1)
	select {}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
