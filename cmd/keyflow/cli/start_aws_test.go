package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// startMoto starts moto_server on a free port for this test and stops it
// (its whole process group, by its own pid) in Cleanup; it skips the test
// when moto_server is not installed.
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skipf("moto_server is not on PATH (pip install 'moto[server]'), so the AWS-backend run is skipped: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url
		}
	}
	t.Fatal("moto_server did not answer within 30s")
	return ""
}

// TestStartLifecycleAWS runs the whole 90-day lifecycle with --backend aws:
// the engine on the virtual clock here, every handler on the real SDK
// clients, which AWS_ENDPOINT_URL sends to moto_server.
func TestStartLifecycleAWS(t *testing.T) {
	url := startMoto(t)
	t.Setenv("AWS_ENDPOINT_URL", url)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	iamc := iam.NewFromConfig(cfg)
	if _, err := iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("ci-bot")}); err != nil {
		t.Fatal(err)
	}
	old, err := iamc.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("ci-bot")})
	if err != nil {
		t.Fatal(err)
	}
	oldID := aws.ToString(old.AccessKey.AccessKeyId)
	topic, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("keyflow-notifications")})
	if err != nil {
		t.Fatal(err)
	}
	created := aws.ToTime(old.AccessKey.CreateDate).UTC()
	in, _ := json.Marshal(map[string]any{
		"accountId": "123456789012", "userName": "ci-bot", "accessKeyId": oldID, "action": "rotate",
		"deactivateAt": created.Add(60 * 24 * time.Hour).Format(time.RFC3339),
		"deleteAt":     created.Add(90 * 24 * time.Hour).Format(time.RFC3339),
	})
	var out, errb bytes.Buffer
	code := Run([]string{"start", "lifecycle", "--backend", "aws", "--topic", aws.ToString(topic.TopicArn), "--input", string(in)},
		strings.NewReader(""), &out, &errb)
	if code != ExitOK {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	keys, err := iamc.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("ci-bot")})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.AccessKeyMetadata) != 1 || aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId) == oldID {
		t.Fatalf("after the lifecycle the user has %+v; want only the new key", keys.AccessKeyMetadata)
	}
	newID := aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId)
	sec, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String("Account_123456789012_User_ci-bot_AccessKey"), VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(aws.ToString(sec.SecretString), newID) {
		t.Errorf("the secret's AWSCURRENT does not hold the new key %s", newID)
	}
	if strings.Contains(out.String(), "SecretAccessKey") {
		t.Errorf("the output names a secret: %s", out.String())
	}
}
