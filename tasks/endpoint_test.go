package tasks

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// A handler built the way cmd/lambda builds it, config.LoadDefaultConfig
// with nothing but the environment, reaches whatever AWS_ENDPOINT_URL names.
func TestLoadDefaultConfigHonoursAWSEndpointURL(t *testing.T) {
	url := motoURL(t)
	t.Setenv("AWS_ENDPOINT_URL", url)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	accounts := NewAWSAccounts(cfg, "")
	// The caller's own account (moto's default) needs no AssumeRole.
	c, err := accounts.IAM(t.Context(), motoHome)
	if err != nil {
		t.Fatal(err)
	}
	user := "endpoint-" + t.Name()[len(t.Name())-8:]
	if _, err := c.(*iam.Client).CreateUser(t.Context(), &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
		t.Fatal(err)
	}
	out, err := (&CreateKey{Accounts: accounts}).Handle(t.Context(), CreateKeyInput{AccountID: motoHome, UserName: user})
	if err != nil {
		t.Fatal(err)
	}
	if out.Action != "created" || accountOfARN(out.SecretArn) != motoHome {
		t.Fatalf("output %+v", out)
	}
}
