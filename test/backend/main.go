// Command backend is a tiny HTTP server that stands in for a cluster's
// entry point in the README walk-through: start it and the target whose
// check points at its address comes up; stop it (Ctrl-C) and it goes down.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := "127.0.0.1:9001"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	log.Printf("backend listening on %s; Ctrl-C to stop it", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
