// Package cleanup runs a benchmark's cleanups (killing the processes it
// started, removing its working directory) however it ends: returning
// from main, a fatal error, or an interrupt. log.Fatal alone exits
// without running main's defers and leaves a dozen servers running.
package cleanup

import (
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

var (
	mu   sync.Mutex
	fns  []func()
	once sync.Once
)

// Add registers f; Run calls the registered functions last first. The
// first Add also makes SIGINT and SIGTERM run them and exit.
func Add(f func()) {
	mu.Lock()
	first := fns == nil
	fns = append(fns, f)
	mu.Unlock()
	if first {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			s := <-ch
			Run()
			log.Fatalf("%v: stopped", s)
		}()
	}
}

// Run calls the registered functions once, last first. A second caller
// (a fatal error while an interrupt is being handled) waits for the
// first to finish: exiting meanwhile left half the processes running.
func Run() {
	once.Do(func() {
		mu.Lock()
		todo := fns
		fns = []func(){}
		mu.Unlock()
		for i := len(todo) - 1; i >= 0; i-- {
			todo[i]()
		}
	})
}

// Fatalf runs the cleanups, then logs and exits as log.Fatalf does.
func Fatalf(format string, args ...any) {
	Run()
	log.Fatalf(format, args...)
}
