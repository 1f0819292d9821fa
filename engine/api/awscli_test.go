package api_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow/keyflow/engine/api"
)

// pagedHistory answers GetExecutionHistory in pages of maxResults events,
// the next token being the index of the page's first event.
type pagedHistory struct {
	*fake
	events []types.HistoryEvent
	calls  int
}

func (p *pagedHistory) GetExecutionHistory(_ context.Context, in *sfn.GetExecutionHistoryInput, _ ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	from, _ := strconv.Atoi(aws.ToString(in.NextToken))
	n := int(in.MaxResults)
	if n <= 0 {
		n = 1000
	}
	to := min(from+n, len(p.events))
	out := &sfn.GetExecutionHistoryOutput{Events: p.events[from:to]}
	if to < len(p.events) {
		out.NextToken = aws.String(strconv.Itoa(to))
	}
	return out, nil
}

// The AWS CLI (botocore's signer, serialiser and paginator) works against
// the handler unchanged.
func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI (aws) is not installed: skipping the CLI's round trips")
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	svc := &pagedHistory{fake: newFake()}
	for i := 1; i <= 5; i++ {
		ts := start.Add(time.Duration(i) * time.Second)
		svc.events = append(svc.events, types.HistoryEvent{Id: int64(i), PreviousEventId: int64(i - 1), Timestamp: &ts, Type: types.HistoryEventTypePassStateEntered})
	}
	smArn := "arn:aws:states:us-east-1:111111111111:stateMachine:keyflow-lifecycle"
	exArn := "arn:aws:states:us-east-1:111111111111:execution:keyflow-lifecycle:e1"
	svc.out["ListStateMachines"] = &sfn.ListStateMachinesOutput{StateMachines: []types.StateMachineListItem{
		{Name: aws.String("keyflow-lifecycle"), StateMachineArn: aws.String(smArn), Type: types.StateMachineTypeStandard, CreationDate: &start}}}
	svc.out["StartExecution"] = &sfn.StartExecutionOutput{ExecutionArn: aws.String(exArn), StartDate: &start}
	svc.out["DescribeExecution"] = &sfn.DescribeExecutionOutput{ExecutionArn: aws.String(exArn), StateMachineArn: aws.String(smArn),
		Status: types.ExecutionStatusRunning, StartDate: &start, Input: aws.String(`{"userName":"alice"}`)}

	h, err := api.New(api.Options{Service: svc, Credentials: testCreds})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv) // no profile, token or endpoint of the machine's own
		}
	}
	env = append(env,
		"AWS_ACCESS_KEY_ID="+testCreds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+testCreds.SecretAccessKey, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"))
	cli := func(env []string, args ...string) (map[string]any, string, error) {
		cmd := exec.Command("aws", append([]string{"stepfunctions", "--endpoint-url", srv.URL, "--output", "json"}, args...)...)
		cmd.Env = env
		out, err := cmd.Output()
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		var doc map[string]any
		if err == nil {
			require.NoError(t, json.Unmarshal(out, &doc), "%s", out)
		}
		return doc, stderr, err
	}

	doc, stderr, err := cli(env, "list-state-machines")
	require.NoError(t, err, stderr)
	assert.Equal(t, smArn, doc["stateMachines"].([]any)[0].(map[string]any)["stateMachineArn"])

	doc, stderr, err = cli(env, "start-execution", "--state-machine-arn", smArn, "--name", "e1", "--input", `{"userName":"alice"}`)
	require.NoError(t, err, stderr)
	assert.Equal(t, exArn, doc["executionArn"])
	assert.Equal(t, &sfn.StartExecutionInput{StateMachineArn: aws.String(smArn), Name: aws.String("e1"), Input: aws.String(`{"userName":"alice"}`)},
		svc.received("StartExecution"))

	doc, stderr, err = cli(env, "describe-execution", "--execution-arn", exArn)
	require.NoError(t, err, stderr)
	assert.Equal(t, "RUNNING", doc["status"])
	assert.Equal(t, `{"userName":"alice"}`, doc["input"])

	doc, stderr, err = cli(env, "get-execution-history", "--execution-arn", exArn, "--page-size", "2")
	require.NoError(t, err, stderr)
	events := doc["events"].([]any)
	require.Len(t, events, 5, "the CLI followed every nextToken")
	for i, e := range events {
		assert.EqualValues(t, i+1, e.(map[string]any)["id"])
	}
	assert.Equal(t, 3, svc.calls, "three pages of two")

	svc.answer("StartExecution", nil, &types.ExecutionAlreadyExists{Message: aws.String("Execution Already Exists: '" + exArn + "'")})
	_, stderr, err = cli(env, "start-execution", "--state-machine-arn", smArn, "--name", "e1")
	require.Error(t, err)
	assert.Contains(t, stderr, "(ExecutionAlreadyExists)")

	bad := append(env[:len(env):len(env)], "AWS_SECRET_ACCESS_KEY=not-the-secret")
	_, stderr, err = cli(bad, "list-state-machines")
	require.Error(t, err)
	assert.Contains(t, stderr, "(InvalidSignatureException)")
	assert.NotContains(t, stderr, testCreds.SecretAccessKey)
}
