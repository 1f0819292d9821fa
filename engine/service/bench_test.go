package service_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/engine/service"
)

// parkedDef parks an execution in a 30-day Wait after one state.
const parkedDef = `{"StartAt":"Prepare","States":{
  "Prepare":{"Type":"Pass","Result":{"key":"AKIAEXAMPLE"},"ResultPath":"$.key","Next":"Hold"},
  "Hold":{"Type":"Wait","Seconds":2592000,"Next":"Done"},
  "Done":{"Type":"Succeed"}}}`

// BenchmarkParkedExecutions measures what executions parked in a Wait
// cost the process and the store, how long a restart takes with all of
// them parked, and how fast they are taken back when all come due at
// once. KEYFLOW_BENCH_PARKED sets how many (default 10,000; make
// bench-durable runs 100,000). Run it with -benchtime 1x.
func BenchmarkParkedExecutions(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("KEYFLOW_BENCH_PARKED")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		path := filepath.Join(b.TempDir(), "keyflow.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		open := func(clock engine.Clock) *service.Local {
			l, err := service.Open(ctx, service.Options{DB: db, Engine: engine.Options{Clock: clock, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}})
			if err != nil {
				b.Fatal(err)
			}
			return l
		}
		count := func(q string) int {
			var c int
			if err := db.QueryRow(q).Scan(&c); err != nil {
				b.Fatal(err)
			}
			return c
		}
		// Polls are spaced out: each counts up to n rows, which the
		// figures must not pay for.
		until := func(ok func() bool) {
			for !ok() {
				time.Sleep(100 * time.Millisecond)
			}
		}
		l := open(engine.NewRealClock())
		sm, err := l.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("Parked"), Definition: aws.String(parkedDef), RoleArn: aws.String("arn:aws:iam::123456789012:role/r")})
		if err != nil {
			b.Fatal(err)
		}
		begin := time.Now()
		for i := range n {
			if _, err := l.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String(fmt.Sprintf("x%06d", i))}); err != nil {
				b.Fatal(err)
			}
		}
		until(func() bool { return count(`SELECT count(*) FROM sfn_executions WHERE parked = 1`) == n })
		b.ReportMetric(float64(n)/time.Since(begin).Seconds(), "starts/s")
		until(func() bool { return l.Loaded() == 0 })
		runtime.GC()
		b.ReportMetric(float64(rssBytes())/(1<<20), "MiB-RSS-parked")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		b.ReportMetric(float64(storeBytes(path))/(1<<20), "MiB-store")
		l.Close()

		restart := time.Now()
		l = open(engine.NewRealClock())
		b.ReportMetric(time.Since(restart).Seconds(), "s-restart")
		if c := count(`SELECT count(*) FROM sfn_executions WHERE status = 'RUNNING' AND parked = 1`); c != n {
			b.Fatalf("%d of %d executions parked after the restart", c, n)
		}
		runtime.GC()
		b.ReportMetric(float64(rssBytes())/(1<<20), "MiB-RSS-restarted")
		l.Close()

		// The process was down while every Wait ended: at the next start
		// all are due, and all carry on to their end.
		due := time.Now()
		l = open(shifted{31 * 24 * time.Hour})
		var peak int64
		until(func() bool {
			peak = max(peak, rssBytes())
			return count(`SELECT count(*) FROM sfn_executions WHERE status = 'SUCCEEDED'`) == n
		})
		b.ReportMetric(float64(n)/time.Since(due).Seconds(), "wakes/s")
		b.ReportMetric(float64(peak)/(1<<20), "MiB-RSS-peak-waking")
		l.Close()
		db.Close()
	}
}

// shifted is the real clock, ahead by a duration.
type shifted struct{ by time.Duration }

func (c shifted) Now() time.Time { return time.Now().UTC().Add(c.by) }

func (c shifted) Sleep(ctx context.Context, d time.Duration) error {
	return engine.NewRealClock().Sleep(ctx, d)
}

// rssBytes is the process's resident set, from /proc (0 elsewhere).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func storeBytes(path string) int64 {
	var total int64
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	return total
}
