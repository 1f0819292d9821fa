package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyflow/keyflow/sandbox"
)

// keyCreator is the kind of small interface package tasks declares: the real
// *iam.Client and *sandbox.IAM both satisfy it.
type keyCreator interface {
	CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, optFns ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
}

var (
	_ keyCreator = (*iam.Client)(nil)
	_ keyCreator = (*sandbox.IAM)(nil)
)

func Example() {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	s, _ := sandbox.New(sandbox.Options{Now: func() time.Time { return now }})
	rep, _ := sandbox.Seed(s, sandbox.SeedOptions{Accounts: 3, UsersPerAccount: 1000, Seed: 1, Now: now})
	fmt.Println("users:", rep.Users, "accounts:", len(rep.MemberAccounts))

	ctx := context.Background()
	var c keyCreator = s.IAM(rep.MemberAccounts[0])
	_, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("nobody")})
	var nse *types.NoSuchEntityException
	fmt.Println(errors.As(err, &nse), nse.ErrorCode(), nse.ErrorMessage())
	// Output:
	// users: 3000 accounts: 3
	// true NoSuchEntity The user with name nobody cannot be found.
}
