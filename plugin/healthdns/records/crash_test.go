package records

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The kill -9 test: a child process (this test binary, re-executed) applies
// batches to a store from two writers at once (owners eu and ap) and
// prints each version as soon as Apply returned it; the parent kills it
// with SIGKILL at a random moment, reopens the store, and checks that
// every acknowledged batch is there, and nothing else but possibly the one
// batch in flight of each writer. The child starts again on the same
// directory, so versions must also keep going up across restarts.

const crashEnv = "HEALTHDNS_RECORDS_CRASH_DIR"

// crashBatch is batch i (from 1) of the child's deterministic sequence:
// create r<i>, update r<i-3>, delete r<i-7>, and set the batch counter.
func crashBatch(i int) Changes {
	addr := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }
	name := func(i int) string { return "r" + strconv.Itoa(i) + ".gslb.example.com" }
	c := Changes{Create: []Endpoint{
		a(name(i), addr(i)),
		{DNSName: "batch.gslb.example.com", RecordType: TypeTXT, Targets: []string{strconv.Itoa(i)}},
	}}
	if i > 3 {
		c.UpdateOld = []Endpoint{a(name(i-3), addr(i-3))}
		c.UpdateNew = []Endpoint{{DNSName: name(i - 3), RecordType: TypeA, Targets: []string{addr(i - 3), addr(i)}, RecordTTL: 60,
			ProviderSpecific: []Property{{PropWeight, strconv.Itoa(i % 7)}}}}
	}
	if i > 7 {
		c.Delete = []Endpoint{a(name(i - 7))}
	}
	return c
}

// crashPeerSet is what the child installs as a replicated Set after batch i.
func crashPeerSet(i int) Set {
	eps, _ := ApplyChanges(nil, Changes{Create: []Endpoint{a("peer.gslb.example.com", fmt.Sprintf("198.51.100.%d", i%250+1))}})
	return Set{Owner: "us", Head: Head{Version: Version{Epoch: 1, Seq: uint64(i)}, Digest: Digest(eps)}, Endpoints: eps}
}

func batchOf(s Set) int {
	e, ok := s.Lookup(Key{Name: "batch.gslb.example.com", Type: TypeTXT})
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(e.Targets[0])
	return n
}

func crashChild(dir string) {
	s, err := Open(dir, Options{CompactBytes: 8 << 10})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(w, format, args...)
		w.Flush()
		mu.Unlock()
	}
	deadline := time.Now().Add(20 * time.Second) // in case the parent is gone
	writer := func(owner string, merge bool) {
		for i := batchOf(s.Set(owner)) + 1; time.Now().Before(deadline); i++ {
			ch, err := s.Apply(owner, crashBatch(i))
			if err != nil {
				say("error %v\n", err)
				os.Exit(2)
			}
			// Acknowledged: Apply returned. Written straight to the pipe.
			say("apply %s %d %d %d\n", owner, i, ch.To.Version.Epoch, ch.To.Version.Seq)
			if merge && i%3 == 0 {
				if _, err := s.Install(crashPeerSet(i)); err != nil {
					say("error %v\n", err)
					os.Exit(2)
				}
				say("merge %d\n", i)
			}
		}
	}
	go writer("ap", false)
	writer("eu", true)
	os.Exit(0)
}

func TestKill9(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	const rounds = 25
	dir := t.TempDir()
	owners := []string{"eu", "ap"}
	var (
		expected   = map[string][]Endpoint{} // an owner's records after done[owner] batches
		done       = map[string]int{}
		lastAcked  = map[string]Version{} // the highest version acknowledged in any round
		applies    int
		start      = time.Now()
		recoveries []time.Duration
	)
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Wait for the first acknowledgement, then kill at a random moment.
		first, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("round %d: the child printed nothing", round)
		}
		time.Sleep(time.Duration(rand.IntN(30_000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		// Read to the end before Wait, which closes the pipe: lines
		// still in it would be acknowledgements this side never saw.
		said := append([]string{first}, drain(lines)...)
		cmd.Wait()
		ackApply := map[string]int{}
		ackVersion := map[string]Version{}
		ackMerge := 0
		for _, l := range said {
			f := strings.Fields(l)
			switch {
			case len(f) == 5 && f[0] == "apply":
				owner := f[1]
				i, _ := strconv.Atoi(f[2])
				e, _ := strconv.ParseUint(f[3], 10, 64)
				s, _ := strconv.ParseUint(f[4], 10, 64)
				v := Version{e, s}
				if !lastAcked[owner].Less(v) {
					t.Fatalf("round %d: %s batch %d acknowledged at version %v, not after %v: a version reused", round, owner, i, v, lastAcked[owner])
				}
				lastAcked[owner], ackApply[owner], ackVersion[owner] = v, i, v
				applies++
			case len(f) == 2 && f[0] == "merge":
				ackMerge, _ = strconv.Atoi(f[1])
			default:
				t.Fatalf("round %d: child said %q", round, l)
			}
		}

		t0 := time.Now()
		s, err := Open(dir, Options{Logf: t.Logf, CompactBytes: 8 << 10})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		recoveries = append(recoveries, time.Since(t0))
		for _, owner := range owners {
			set := s.Set(owner)
			got := batchOf(set)
			if got < ackApply[owner] || got > max(ackApply[owner], done[owner])+1 {
				t.Fatalf("round %d: %s recovered batch %d, acknowledged %d: lost an acknowledged batch", round, owner, got, ackApply[owner])
			}
			if set.Head.Version.Less(ackVersion[owner]) {
				t.Fatalf("round %d: %s recovered version %v before the acknowledged %v", round, owner, set.Head.Version, ackVersion[owner])
			}
			lastAcked[owner] = max2(lastAcked[owner], set.Head.Version)
			for ; done[owner] < got; done[owner]++ {
				expected[owner], err = ApplyChanges(expected[owner], crashBatch(done[owner]+1))
				if err != nil {
					t.Fatal(err)
				}
			}
			if names(set.Endpoints) != names(expected[owner]) || set.Head.Digest != Digest(expected[owner]) {
				t.Fatalf("round %d: %s recovered %s\nwant %s", round, owner, names(set.Endpoints), names(expected[owner]))
			}
		}
		if us := s.Set("us"); us.Head.Version.Seq < uint64(ackMerge) || (ackMerge > 0 && us.Head.Version.Seq == uint64(ackMerge) && !sameSet(us, crashPeerSet(ackMerge))) {
			t.Fatalf("round %d: installed set at %v, acknowledged install of batch %d", round, us.Head, ackMerge)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %v batches acknowledged, recovered eu %d, ap %d", round, ackApply, done["eu"], done["ap"])
	}
	t.Logf("%d rounds of kill -9 with two writers, %d acknowledged batches, none lost, in %v; recovery took at most %v", rounds, applies, time.Since(start).Round(time.Millisecond), slices.Max(recoveries))
}

func drain(ch chan string) []string {
	var out []string
	for l := range ch {
		out = append(out, l)
	}
	return out
}

func max2(a, b Version) Version {
	if a.Less(b) {
		return b
	}
	return a
}
