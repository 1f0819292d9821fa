package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyflow/keyflow/audit"
	"github.com/keyflow/keyflow/cmd/keyflow/local"
	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/sandbox"
	"github.com/keyflow/keyflow/tasks"
)

// endLog is every execution a backend saw end, from its OnExecutionEnd.
type endLog struct {
	mu   sync.Mutex
	arns []string
}

func (l *endLog) add(r *engine.Result) {
	l.mu.Lock()
	l.arns = append(l.arns, r.ExecutionArn)
	l.mu.Unlock()
}

var endLogs sync.Map // *local.Backend -> *endLog

// auditLog reads the backend's audit bucket back: the records in chain
// order (walked from the head), and every stored object's bytes.
func auditLog(t *testing.T, sb *sandbox.Sandbox, bucket string) ([]*audit.Record, []string) {
	t.Helper()
	ctx := context.Background()
	c := sb.S3("123456789012") // the backend's default AccountID
	var objects []string
	byHash := map[string]*audit.Record{}
	head := ""
	var token *string
	for {
		page, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(g.Body)
			objects = append(objects, string(body))
			if aws.ToString(o.Key) == tasks.AuditHeadKey {
				var h struct{ Hash string }
				if err := json.Unmarshal(body, &h); err != nil {
					t.Fatal(err)
				}
				head = h.Hash
				continue
			}
			recs, err := audit.ReadJSONL(bytes.NewReader(body))
			if err != nil || len(recs) != 1 {
				t.Fatalf("object %s: %d records, %v", aws.ToString(o.Key), len(recs), err)
			}
			r := recs[0]
			name := r.ExecutionArn[strings.LastIndex(r.ExecutionArn, ":")+1:]
			if !strings.HasSuffix(aws.ToString(o.Key), "/"+name+".json") {
				t.Errorf("object %s holds the record of %s", aws.ToString(o.Key), r.ExecutionArn)
			}
			byHash[r.Hash] = r
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		token = page.NextContinuationToken
	}
	var chain []*audit.Record
	for h := head; h != ""; {
		r := byHash[h]
		if r == nil {
			t.Fatalf("the chain breaks at %.12s", h)
		}
		chain = append(chain, r)
		h = r.Prev
		if len(chain) > len(byHash) {
			t.Fatal("the chain loops")
		}
	}
	if len(chain) != len(byHash) {
		t.Errorf("%d records stored, %d on the chain from the head", len(byHash), len(chain))
	}
	slices.Reverse(chain)
	return chain, objects
}

// checkAudit: after a run has settled, the audit bucket holds exactly one
// record per ended execution, each naming its execution, chained and
// verifiable; and no record, object or email holds a secret that Secrets
// Manager holds, or anything shaped like one.
func checkAudit(t *testing.T, b *local.Backend, sb *sandbox.Sandbox, rep sandbox.SeedReport) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	st := b.AuditStatus()
	if len(st.Failed) != 0 {
		t.Fatalf("audit failures: %v", st.Failed)
	}
	v, _ := endLogs.Load(b)
	ends := v.(*endLog)
	ends.mu.Lock()
	ended := slices.Clone(ends.arns)
	ends.mu.Unlock()
	chain, objects := auditLog(t, sb, local.AuditBucket("123456789012"))
	if len(chain) != len(ended) || st.Stored != len(ended) {
		t.Fatalf("%d executions ended, %d records on the chain, %d stored", len(ended), len(chain), st.Stored)
	}
	var got []string
	for _, r := range chain {
		got = append(got, r.ExecutionArn)
		if r.Status == "" || r.Status == "RUNNING" {
			t.Errorf("record of %s: status %q", r.ExecutionArn, r.Status)
		}
	}
	// The chain is in the order the executions ended.
	if !slices.Equal(got, ended) {
		t.Errorf("chain order %v\nended order %v", got, ended)
	}
	if err := audit.Verify(chain); err != nil {
		t.Fatal(err)
	}

	hay := objects
	for _, m := range sb.Mail() {
		raw, _ := json.Marshal(m)
		hay = append(hay, string(raw))
	}
	var secrets []string
	for _, acct := range append([]string{sb.ManagementAccount()}, rep.MemberAccounts...) {
		var list []smtypes.SecretListEntry
		for tok := (*string)(nil); ; {
			page, err := sb.SecretsManager(acct).ListSecrets(ctx, &sm.ListSecretsInput{NextToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, page.SecretList...)
			if tok = page.NextToken; tok == nil {
				break
			}
		}
		for _, s := range list {
			for _, stage := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
				v, err := sb.SecretsManager(acct).GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: s.ARN, VersionStage: aws.String(stage)})
				if err != nil {
					continue
				}
				var doc struct{ SecretAccessKey string }
				if json.Unmarshal([]byte(aws.ToString(v.SecretString)), &doc) == nil && doc.SecretAccessKey != "" {
					secrets = append(secrets, doc.SecretAccessKey)
				}
			}
		}
	}
	for _, h := range hay {
		if tasks.LooksLikeSecret(h) || audit.LooksLikeSecret(h) {
			t.Errorf("secret-shaped text in an audit object or email: %.300q", h)
		}
		for _, s := range secrets {
			if strings.Contains(h, s) {
				t.Errorf("a stored secret in an audit object or email: %.120q", h)
			}
		}
	}
	t.Logf("%d executions ended; %d chained audit records verified; %d emails; %d stored secrets searched for", len(ended), len(chain), len(sb.Mail()), len(secrets))
}
