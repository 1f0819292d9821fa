package policy_test

import (
	"fmt"

	"github.com/keyflow/keyflow/policy"
)

func ExampleEvaluate() {
	mfa := policy.MFARequired("")
	enrol := policy.Request{
		Action:   "iam:EnableMFADevice",
		Resource: "arn:aws:iam::111122223333:user/alice",
		Context:  map[string][]string{policy.KeyUserName: {"alice"}, policy.KeyMFAPresent: {"false"}},
	}
	res, _ := policy.Evaluate(enrol, mfa)
	fmt.Println(res.Decision, res.Sid)

	other := enrol
	other.Action = "s3:ListAllMyBuckets"
	other.Resource = "*"
	res, _ = policy.Evaluate(other, mfa)
	fmt.Println(res.Decision, res.Sid)
	// Output:
	// Allow AllowManageOwnMFAAndPassword
	// ExplicitDeny DenyAllExceptMFAEnrolmentWithoutMFA
}
