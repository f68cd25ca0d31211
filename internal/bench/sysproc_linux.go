package bench

import "syscall"

// sysProcAttr makes a child die with the benchmark, so an interrupted run
// leaves no authority or gate behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
