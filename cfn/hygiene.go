package cfn

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/cloudwatch"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/logs"
	"github.com/awslabs/goformation/v7/cloudformation/sns"

	"github.com/keyflow/keyflow/policy"
)

// Conditions and parameters of the account hygiene resources.
const (
	condSourceIP      = "SourceIpRestrictionEnabled"
	condMFAGroup      = "HasMFARequiredGroup"
	condSourceIPGroup = "HasSourceIpGroup"
	paramSourceRanges = "AllowedSourceIpRanges"
	paramMFAGroup     = "MFARequiredGroup"
	paramSourceGroup  = "SourceIpGroup"
	// paramMemberMFAPolicy (central) and paramMFAPolicyName (member) are
	// the name of the member stacks' copy of the MFA-required policy.
	paramMemberMFAPolicy = "MemberMFAPolicyName"
	paramMFAPolicyName   = "MFAPolicyName"
)

// accountIAMActions are IAM actions on the account itself: IAM authorizes
// them against "*" only, so a role scoped to users could never call them.
var accountIAMActions = map[string]bool{"iam:GetAccountPasswordPolicy": true, "iam:UpdateAccountPasswordPolicy": true}

// policyAttachActions may attach or detach only keyflow's MFA policy: an
// attach right on any policy would let the function grant administrator.
var policyAttachActions = map[string]bool{"iam:AttachUserPolicy": true, "iam:DetachUserPolicy": true}

// iamStatements scopes a role's IAM actions: user actions to the account's
// users, attach/detach to the MFA policy (mfaPolicyArn, the template's own
// copy) by condition, account-level reads and writes to "*".
func iamStatements(actions []string, mfaPolicyArn any) []any {
	var users, account, attach []string
	for _, a := range actions {
		switch {
		case accountIAMActions[a]:
			account = append(account, a)
		case policyAttachActions[a]:
			attach = append(attach, a)
		default:
			users = append(users, a)
		}
	}
	var out []any
	if len(users) > 0 {
		out = append(out, allow("IAMUsers", users, usersInAccount))
	}
	if len(attach) > 0 {
		s := allow("MFAPolicyOnUsers", attach, usersInAccount)
		s.Condition = map[string]any{"ArnEquals": map[string]any{"iam:PolicyARN": mfaPolicyArn}}
		out = append(out, s)
	}
	if len(account) > 0 {
		out = append(out, allow("AccountPasswordPolicy", account, "*"))
	}
	return out
}

// policyDocument turns a generated document into the template's JSON:
// strings with a ${...} of CloudFormation's (the partition) become Fn::Sub,
// with IAM's own policy variables escaped as ${!aws:username}.
func policyDocument(d *policy.Document) (any, error) {
	raw, err := d.JSON()
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			if strings.Contains(x, "${AWS::") {
				return sub(strings.ReplaceAll(x, "${aws:", "${!aws:"))
			}
		}
		return v
	}
	return walk(v), nil
}

// policyNameParam is a parameter naming the member stacks' MFA policy, with
// IAM's rule for a policy name, so a bad one fails the stack rather than
// every MFA execution.
func policyNameParam(desc string) cloudformation.Parameter {
	p := param("String", desc, policy.MFARequiredName)
	p.AllowedPattern = cloudformation.String(`^[\w+=,.@-]{1,128}$`)
	return p
}

// mfaPolicy is the MFA-required policy, named name (nil: CloudFormation
// names it).
func mfaPolicy(name *string, groups []string) (*iam.ManagedPolicy, error) {
	doc, err := policyDocument(policy.MFARequired("${AWS::Partition}"))
	if err != nil {
		return nil, err
	}
	return &iam.ManagedPolicy{
		ManagedPolicyName: name,
		Description:       cloudformation.String("keyflow: without an MFA session, deny everything except enrolling an MFA device on one's own user"),
		PolicyDocument:    doc,
		Groups:            groups,
	}, nil
}

// hygiene adds the policies as code, their parameters, and, with the
// trail, the CIS metric filters and alarms.
func hygiene(t *cloudformation.Template) error {
	nonEmpty := func(p string) map[string]any {
		return map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref(p), ""}}}}
	}
	t.Parameters[paramSourceRanges] = cloudformation.Parameter{Type: "CommaDelimitedList", Default: "",
		Description: cloudformation.String("CIDR ranges the source-IP policy allows (e.g. 203.0.113.0/24,2001:db8::/32); empty: no source-IP policy.")}
	t.Parameters[paramMFAGroup] = param("String", "IAM group that receives the MFA-required policy for all its members; empty for none (the MFA workflow attaches it per user).", "")
	t.Parameters[paramSourceGroup] = param("String", "IAM group that receives the source-IP policy; empty for none.", "")
	t.Conditions[condSourceIP] = map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Fn::Join": []any{"", ref(paramSourceRanges)}}, ""}}}}
	t.Conditions[condMFAGroup] = nonEmpty(paramMFAGroup)
	t.Conditions[condSourceIPGroup] = map[string]any{"Fn::And": []any{map[string]any{"Condition": condSourceIP}, nonEmpty(paramSourceGroup)}}

	t.Parameters[paramMemberMFAPolicy] = policyNameParam(
		"Name of the MFA-required policy the member template creates in the other accounts (its MFAPolicyName); this stack's own copy is named by CloudFormation.")
	// CloudFormation names it: the member template may be deployed in
	// this account too (by a StackSet over the whole Organization, say),
	// and its copy has the fixed name the handlers find in every other
	// account. The handlers get this one's ARN (mfaPolicyArn).
	mfa, err := mfaPolicy(nil, []string{cloudformation.If(condMFAGroup, cloudformation.Ref(paramMFAGroup), cloudformation.Ref("AWS::NoValue"))})
	if err != nil {
		return err
	}
	t.Resources["MFARequiredPolicy"] = mfa

	// The document is generated with a placeholder range that the
	// parameter replaces: the generator refuses an empty list, and so does
	// the condition.
	ip, err := policy.SourceIPRestriction([]string{"192.0.2.0/24"})
	if err != nil {
		return err
	}
	ipDoc, err := policyDocument(ip)
	if err != nil {
		return err
	}
	cond := ipDoc.(map[string]any)["Statement"].([]any)[0].(map[string]any)["Condition"].(map[string]any)
	cond["NotIpAddress"].(map[string]any)[policy.KeySourceIP] = ref(paramSourceRanges)
	// CloudFormation names it: nothing finds it by name (the group is
	// given here), and a fixed name would clash with a second keyflow
	// stack in the same account.
	t.Resources["SourceIpPolicy"] = &iam.ManagedPolicy{
		Description:                cloudformation.String("keyflow: deny every request from outside the allowed ranges, except AWS services acting for the user"),
		PolicyDocument:             ipDoc,
		Groups:                     []string{cloudformation.If(condSourceIPGroup, cloudformation.Ref(paramSourceGroup), cloudformation.Ref("AWS::NoValue"))},
		AWSCloudFormationCondition: condSourceIP,
	}
	alarms(t)
	return nil
}

// cisAlarms are the CIS AWS Foundations Benchmark's CloudWatch checks that
// concern IAM, with the benchmark's filter patterns.
var cisAlarms = []struct{ logical, metric, description, pattern string }{
	{"UnauthorizedApiCalls", "UnauthorizedAPICalls", "API calls refused as unauthorized",
		`{ (($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")) && ($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }`},
	{"ConsoleSignInWithoutMFA", "ConsoleSignInWithoutMFA", "console sign-in by an IAM user without MFA",
		`{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }`},
	{"RootAccountUsage", "RootAccountUsage", "the root user was used",
		`{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }`},
	{"IAMPolicyChanges", "IAMPolicyChanges", "an IAM policy was created, changed, attached or detached",
		`{ ($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || ($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || ($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy) }`},
}

// alarmNamespace is where the metric filters count.
const alarmNamespace = "keyflow/CISBenchmark"

// alarms sends the trail to CloudWatch Logs and raises an alarm on each
// CIS pattern. They go to a topic of their own: the notifications topic is
// encrypted with the AWS-managed aws/sns key, whose key policy CloudWatch
// cannot use, so an alarm could never publish there. Alarm messages carry
// no secret, only counts.
func alarms(t *cloudformation.Template) {
	t.Resources["TrailLogGroup"] = &conditionalResource{Type: "AWS::Logs::LogGroup", Condition: condTrail, Properties: map[string]any{
		"LogGroupName": sub("/keyflow/cloudtrail/${AWS::StackName}"), "RetentionInDays": ref("LogRetentionDays"),
	}}
	t.Resources["TrailLogsRole"] = &iam.Role{
		Description:              cloudformation.String("keyflow: CloudTrail delivers the trail's events to its log group"),
		Path:                     cloudformation.String(rolePath),
		AssumeRolePolicyDocument: trust("cloudtrail.amazonaws.com"),
		Policies: []iam.Role_Policy{{PolicyName: "trail-logs", PolicyDocument: document(
			allow("TrailLogs", []string{"logs:CreateLogStream", "logs:PutLogEvents"}, sub("${TrailLogGroup.Arn}")),
		)}},
		AWSCloudFormationCondition: condTrail,
	}
	t.Resources["AlarmTopic"] = &sns.Topic{
		TopicName:                  cloudformation.SubPtr("keyflow-alarms-${AWS::StackName}"),
		AWSCloudFormationCondition: condTrail,
	}
	t.Resources["AlarmTopicEmail"] = &sns.Subscription{
		TopicArn: cloudformation.Ref("AlarmTopic"), Protocol: "email", Endpoint: cloudformation.RefPtr("NotificationEmail"),
		AWSCloudFormationCondition: condTrailEmail,
	}
	t.Conditions[condTrailEmail] = map[string]any{"Fn::And": []any{map[string]any{"Condition": condTrail}, map[string]any{"Condition": condEmail}}}
	for _, a := range cisAlarms {
		t.Resources[a.logical+"MetricFilter"] = &logs.MetricFilter{
			FilterPattern: a.pattern,
			LogGroupName:  cloudformation.Ref("TrailLogGroup"),
			MetricTransformations: []logs.MetricFilter_MetricTransformation{{
				MetricName: a.metric, MetricNamespace: alarmNamespace, MetricValue: "1",
			}},
			AWSCloudFormationCondition: condTrail,
		}
		t.Resources[a.logical+"Alarm"] = &cloudwatch.Alarm{
			AlarmDescription:           cloudformation.String(fmt.Sprintf("keyflow (CIS benchmark): %s", a.description)),
			MetricName:                 cloudformation.String(a.metric),
			Namespace:                  cloudformation.String(alarmNamespace),
			Statistic:                  cloudformation.String("Sum"),
			Period:                     cloudformation.Int(300),
			EvaluationPeriods:          1,
			Threshold:                  cloudformation.Float64(1),
			ComparisonOperator:         "GreaterThanOrEqualToThreshold",
			TreatMissingData:           cloudformation.String("notBreaching"),
			AlarmActions:               []string{cloudformation.Ref("AlarmTopic")},
			AWSCloudFormationCondition: condTrail,
			AWSCloudFormationDependsOn: []string{a.logical + "MetricFilter"},
		}
	}
}

const condTrailEmail = "TrailAlarmEmail"

// conditionalResource is a rawResource that exists only under a condition.
type conditionalResource struct {
	Type       string
	Condition  string
	Properties map[string]any
}

func (r *conditionalResource) AWSCloudFormationType() string { return r.Type }
func (r *conditionalResource) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"Type": r.Type, "Condition": r.Condition, "Properties": r.Properties})
}
