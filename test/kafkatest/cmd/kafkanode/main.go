// Command kafkanode runs a kafkatest cluster until it is sent SIGINT or
// SIGTERM, for people and scripts (test/kafka/start-single and stop).
//
//	kafkanode -port 19092 -dir /tmp/fleetgate-kafka-single -ready /tmp/x/bootstrap
//
// It prints the bootstrap address once the cluster is ready, and writes it to
// the -ready file too; on a signal it stops the brokers (SIGTERM, then SIGKILL
// after 10 s) and removes the node directories unless -keep is given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleetgate/fleetgate/test/kafkatest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kafkanode:", err)
		os.Exit(1)
	}
}

func run() error {
	nodes := flag.Int("nodes", 1, "number of nodes: 1 or 3")
	port := flag.Int("port", 0, "client port of node 1 (node N gets port+N-1); 0 picks free ports")
	dir := flag.String("dir", "", "cluster directory (default: a new temporary one)")
	home := flag.String("kafka-home", "", "Kafka installation from test/kafka/fetch (default $"+kafkatest.EnvKafkaHome+" or the cache)")
	heap := flag.String("heap", "", "JVM -Xmx per node (default 512m)")
	ready := flag.String("ready", "", "file to write the bootstrap address to once ready")
	keep := flag.Bool("keep", false, "keep the directories on exit")
	flag.Parse()

	opts := kafkatest.Options{Nodes: *nodes, Dir: *dir, KafkaHome: *home, Heap: *heap, Keep: *keep}
	if *port != 0 {
		for i := range max(*nodes, 1) {
			opts.Ports = append(opts.Ports, *port+i)
		}
	}
	// Stop on a signal even while starting.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, kafkatest.DefaultStartTimeout)
	defer cancel()
	began := time.Now()
	c, err := kafkatest.Start(startCtx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(os.Stderr, "kafkanode: %d-node Kafka %s ready in %s, dir %s\n", c.Nodes(), c.Version(), time.Since(began).Round(time.Millisecond), c.Dir())
	fmt.Println(c.Bootstrap())
	if *ready != "" {
		if err := os.WriteFile(*ready, []byte(c.Bootstrap()+"\n"), 0o644); err != nil {
			return err
		}
	}
	<-ctx.Done()
	began = time.Now()
	err = c.Close()
	fmt.Fprintf(os.Stderr, "kafkanode: stopped in %s\n", time.Since(began).Round(time.Millisecond))
	return err
}
