// Command pause is the pod sandbox process of the local node. Nothing can be pulled from the internet here,
// so the tooling builds it (static, CGO_ENABLED=0) and imports it into containerd. Like the upstream pause it
// sleeps until SIGINT or SIGTERM and reaps the orphans it inherits when it is a PID namespace's init.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
