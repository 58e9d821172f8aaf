// Command hello is the entrypoint of the small test images the e2e tests and `npm start` push to the local
// registry. It prints its arguments (or "hello") and exits 0, so that a pod Succeeds and its log can be read
// back; with -sleep it stays up until SIGTERM, so that a pod stays Running. -connect HOST:PORT holds a TCP
// connection open (the node's network check must see it).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	sleep := flag.Bool("sleep", false, "stay up until SIGTERM")
	connect := flag.String("connect", "", "HOST:PORT to hold a TCP connection to (implies -sleep)")
	flag.Parse()
	message := strings.Join(flag.Args(), " ")
	if message == "" {
		message = "hello"
	}
	fmt.Println(message)
	if *connect != "" {
		conn, err := net.Dial("tcp", *connect)
		if err != nil {
			fmt.Fprintln(os.Stderr, "connect:", err)
			os.Exit(1)
		}
		defer conn.Close()
		fmt.Println("connected to", conn.RemoteAddr())
		*sleep = true
	}
	if *sleep {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
		<-signals
	}
}
