package tasks

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyflow/keyflow/sandbox"
)

// TestNoSecretLeavesSecretsManager runs every handler over a seeded
// Organization, then searches everything the handlers returned, logged,
// published, or left in IAM (tags, inline policies) for the secret access
// keys that Secrets Manager now holds, and for anything shaped like one.
// The rule of the house: zero hits.
func TestNoSecretLeavesSecretsManager(t *testing.T) {
	f := newSandboxFx(t)
	sb := f.sb
	rep, err := sandbox.Seed(sb, sandbox.SeedOptions{Accounts: 2, UsersPerAccount: 60, Seed: 7, Now: f.now()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var hay []string // everything that left a handler
	record := func(out any, err error) {
		hay = append(hay, out2json(out))
		if err != nil {
			hay = append(hay, err.Error())
		}
	}
	topic := func(acct string) string {
		return fmt.Sprintf("arn:aws:sns:%s:%s:keyflow-notifications", sb.Region(), acct)
	}
	inv, err := invoke(t, newInventory(f), InventoryInput{Organization: true})
	if err != nil {
		t.Fatal(err)
	}
	record(inv, nil)
	if len(inv.Due) == 0 {
		t.Fatalf("seeded organization has no due keys: %+v", rep)
	}

	type rotation struct {
		acct, user, old, nw, arn string
	}
	var rotations []rotation
	for _, k := range inv.Due {
		if len(rotations) == 12 {
			break
		}
		if k.Action != "rotate" && k.Action != "rotate-after-deleting-inactive" {
			continue
		}
		f.acct = k.AccountID
		out, err := invoke(t, newCreateKey(f), CreateKeyInput{AccountID: k.AccountID, UserName: k.UserName, OldAccessKeyID: k.AccessKeyID, DeleteInactiveKey: true})
		record(out, err)
		if err != nil {
			continue
		}
		rotations = append(rotations, rotation{k.AccountID, k.UserName, k.AccessKeyID, out.AccessKeyID, out.SecretArn})
		n, err := invoke(t, newEmailNotify(f), NotifyInput{AccountID: k.AccountID, UserName: k.UserName, Event: "KeyCreated", TopicArn: topic(k.AccountID),
			AccessKeyID: k.AccessKeyID, NewAccessKeyID: out.AccessKeyID, SecretArn: out.SecretArn})
		record(n, err)
	}
	if len(rotations) == 0 {
		t.Fatal("no key could be rotated")
	}
	f.advance(20 * day)
	for _, r := range rotations {
		d, err := invoke(t, newDeactivateKey(f), DeactivateKeyInput{AccountID: r.acct, UserName: r.user, AccessKeyID: r.old, NewAccessKeyID: r.nw})
		record(d, err)
	}
	f.advance(60 * day)
	for _, r := range rotations {
		d, err := invoke(t, newDeleteKey(f), DeleteKeyInput{AccountID: r.acct, UserName: r.user, AccessKeyID: r.old})
		record(d, err)
		n, err := invoke(t, newEmailNotify(f), NotifyInput{AccountID: r.acct, UserName: r.user, Event: "KeyDeleted", TopicArn: topic(r.acct), AccessKeyID: r.old})
		record(n, err)
	}
	// Quarantine and release a few users (admins are refused).
	quarantined := 0
	for _, k := range inv.Due {
		if quarantined == 3 {
			break
		}
		q, err := invoke(t, newQuarantine(f), QuarantineInput{AccountID: k.AccountID, UserName: k.UserName, DeactivateKeys: true})
		record(q, err)
		if err != nil {
			continue
		}
		quarantined++
		r, err := invoke(t, newRelease(f), ReleaseInput{AccountID: k.AccountID, UserName: k.UserName, Snapshot: &q.Snapshot})
		record(r, err)
	}

	// What IAM keeps about the users we touched: tags and inline policies.
	for _, r := range rotations {
		c := sb.IAM(r.acct)
		tags, err := c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String(r.user)})
		if err != nil {
			t.Fatal(err)
		}
		hay = append(hay, out2json(tags.Tags))
		pols, err := c.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String(r.user)})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pols.PolicyNames {
			doc, err := c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(r.user), PolicyName: aws.String(p)})
			if err != nil {
				t.Fatal(err)
			}
			hay = append(hay, aws.ToString(doc.PolicyDocument))
		}
	}
	// Audit records, stored as the local backend stores them: in a sandbox
	// S3 bucket, through S3RecordStore.
	hay = append(hay, auditIntoSandbox(t, sb, f)...)
	hay = append(hay, f.logBuf.String())
	hay = append(hay, f.outbox()...) // SNS messages and SES email
	if len(sb.Mail()) == 0 {
		t.Fatal("no email was sent: the leak check would not cover email")
	}

	// The secrets: every value Secrets Manager holds for the rotations.
	var secrets []string
	for _, r := range rotations {
		for _, stage := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
			v, err := sb.SecretsManager(r.acct).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.arn), VersionStage: aws.String(stage)})
			if err != nil {
				continue
			}
			var doc map[string]string
			if err := json.Unmarshal([]byte(aws.ToString(v.SecretString)), &doc); err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, doc["SecretAccessKey"])
		}
	}
	if len(secrets) < len(rotations) {
		t.Fatalf("found %d stored secrets for %d rotations", len(secrets), len(rotations))
	}
	hits := 0
	for _, h := range hay {
		for _, s := range secrets {
			if strings.Contains(h, s) {
				hits++
				t.Errorf("stored secret found outside Secrets Manager in %.120q", h)
			}
		}
		if LooksLikeSecret(h) {
			hits++
			t.Errorf("secret-shaped text outside Secrets Manager in %.300q", h)
		}
	}
	t.Logf("searched %d outputs/logs/messages/emails/audit records/IAM records for %d secrets: %d hits (%d rotations, %d quarantines, %d messages and emails)",
		len(hay), len(secrets), hits, len(rotations), quarantined, len(f.outbox()))
}

// The sandbox serves the SDK surfaces the handlers declare.
var (
	_ S3API  = (*sandbox.S3)(nil)
	_ SESAPI = (*sandbox.SESv2)(nil)
)

// auditIntoSandbox runs AuditRecord over the golden histories into a
// sandbox bucket and returns every stored object and every output.
func auditIntoSandbox(t *testing.T, sb *sandbox.Sandbox, f *fx) []string {
	t.Helper()
	ctx := t.Context()
	c := sb.S3(sb.ManagementAccount())
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("keyflow-audit")}); err != nil {
		t.Fatal(err)
	}
	hist := &fakeSFN{execs: map[string][]sfntypes.HistoryEvent{}}
	h := &AuditRecord{SFN: hist, Store: &S3RecordStore{S3: c, Bucket: "keyflow-audit"}, Log: f.log}
	var out []string
	// lifecycle-secret-in-output has a secret in its history: the record
	// must carry the breach, never the secret.
	for _, g := range []string{"lifecycle-clean", "lifecycle-secret-in-output", "quarantine-approved"} {
		arn := execArn(strings.SplitN(g, "-", 2)[0], g)
		hist.execs[arn] = goldenHistory(t, g)
		o, err := invoke(t, h.Handle, AuditRecordInput{ExecutionArn: arn})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, out2json(o))
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("keyflow-audit")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 4 { // three records and the head
		t.Fatalf("%d objects in the audit bucket, want 4", len(list.Contents))
	}
	for _, obj := range list.Contents {
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("keyflow-audit"), Key: obj.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(g.Body)
		out = append(out, string(b))
	}
	return out
}
