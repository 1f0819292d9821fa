package local_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/statemachines"
	"github.com/keyflow/keyflow/tasks"
)

// TestHygieneLargeAccounts: two accounts at IAM's quota of 5,000 users
// each hold more console users without MFA than one 256 KiB payload can
// report; the hygiene workflow pages through them (a dry run, so nothing
// is started) and succeeds, every page's output far under the quota and
// every such user reported once.
func TestHygieneLargeAccounts(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 users: not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := &local.TaskClock{Fallback: func() time.Time { return start }}
	sb, err := sandbox.New(sandbox.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: 2, UsersPerAccount: 5000, Seed: 7, Now: start})
	if err != nil {
		t.Fatal(err)
	}
	without := rep.ConsoleUsers - rep.MFAUsers
	b, err := local.New(local.Options{Sandbox: sb, Clock: clock, EngineClock: engine.NewVirtualClock(start)})
	if err != nil {
		t.Fatal(err)
	}
	hygiene, _ := b.Machine(statemachines.NameHygiene)
	res := hygiene.Run(ctx, "hygiene-large", map[string]any{"organization": true, "dryRun": true})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("hygiene %s: %s: %.300s", res.Status, res.Error, res.Cause)
	}

	const quota = 256 * 1024
	seen := map[string]int{}
	pages, total, largest := 0, 0, 0
	for _, ev := range res.History() {
		var raw string
		switch {
		case ev.LambdaFunctionSucceededEventDetails != nil:
			raw = aws.ToString(ev.LambdaFunctionSucceededEventDetails.Output)
		case ev.TaskSucceededEventDetails != nil:
			raw = aws.ToString(ev.TaskSucceededEventDetails.Output)
		default:
			continue
		}
		var out tasks.HygieneOutput
		if err := json.Unmarshal([]byte(raw), &out); err != nil || out.CheckedAt.IsZero() {
			continue // not a hygiene page
		}
		pages++
		total += len(raw)
		largest = max(largest, len(raw))
		for _, u := range out.Users {
			seen[u.AccountID+"/"+u.UserName]++
		}
	}
	t.Logf("%d users, %d console users without MFA: %d pages, %d bytes in all, the largest %d", rep.Users, without, pages, total, largest)
	if total <= quota {
		t.Fatalf("the reports come to %d bytes: the seed is too small to show paging is needed", total)
	}
	if largest > quota/2 {
		t.Errorf("a page of %d bytes: too close to the %d-byte quota", largest, quota)
	}
	if len(seen) != without {
		t.Errorf("%d users reported, want the %d console users without MFA", len(seen), without)
	}
	for u, n := range seen {
		if n != 1 {
			t.Errorf("%s reported %d times", u, n)
		}
	}
	if got := res.Output.(map[string]any)["started"]; jsonInt(got) != without {
		t.Errorf("summary: %v would start, want %d", got, without)
	}
}

func jsonInt(v any) int {
	b, _ := json.Marshal(v)
	var n int
	json.Unmarshal(b, &n)
	return n
}
