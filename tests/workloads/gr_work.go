// Goroutine workloads for tests/t_goroutines.sh and the benchmark, built
// by them with `go build`:
//
//	gr_work leak RATE [DELAY [FOR]]  after DELAY seconds (default 1), start
//	                           RATE goroutines a second that never return,
//	                           for FOR seconds (default: for ever), each
//	                           made by leakyHandler, the creation site the
//	                           sensor must name
//	gr_work steady N           N parked goroutines, and short-lived ones
//	                           started and finished all the time
//	gr_work spawn N            create N goroutines that return at once,
//	                           and print the cost of each (create + exit)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

var block = make(chan struct{})

func arg(i int, def int) int {
	if len(os.Args) <= i {
		return def
	}
	v, err := strconv.Atoi(os.Args[i])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gr_work: bad number:", os.Args[i])
		os.Exit(2)
	}
	return v
}

// The leak's one creation site: kept a function of its own (not inlined)
// so that its go statement's pc is in it, as in a real handler.
//
//go:noinline
func leakyHandler() {
	go func() { <-block }()
}

// Paced by the clock, not by a ticker, so the rate holds whatever the
// scheduler's timer granularity.
func leak(rate, delay, secs int) {
	time.Sleep(time.Duration(delay) * time.Second)
	start := time.Now()
	fmt.Printf("ready leak rate=%d realtime_ns=%d\n", rate, start.UnixNano())
	made := 0
	for {
		elapsed := time.Since(start).Seconds()
		if secs > 0 && elapsed > float64(secs) {
			elapsed = float64(secs)
		}
		due := int(elapsed * float64(rate))
		for ; made < due; made++ {
			leakyHandler()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func steady(n int) {
	time.Sleep(time.Second)
	for i := 0; i < n; i++ {
		go func() { <-block }()
	}
	fmt.Printf("ready steady parked=%d numgoroutine=%d realtime_ns=%d\n", n,
		runtime.NumGoroutine(), time.Now().UnixNano())
	var wg sync.WaitGroup
	for {
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() { wg.Done() }()
		}
		wg.Wait()
		time.Sleep(time.Millisecond)
	}
}

func spawn(n int) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i += 100 {
		for j := 0; j < 100; j++ {
			wg.Add(1)
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	fmt.Printf("%.1f\n", float64(time.Since(start).Nanoseconds())/float64(n))
}

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "leak":
		leak(arg(2, 200), arg(3, 1), arg(4, 0))
	case "steady":
		steady(arg(2, 1000))
	case "spawn":
		spawn(arg(2, 1000000))
	default:
		fmt.Fprintln(os.Stderr, "usage: gr_work leak RATE [DELAY [FOR]] | steady N | spawn N")
		os.Exit(2)
	}
}
