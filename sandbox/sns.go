package sandbox

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// SNS is one account's SNS, with the methods of *sns.Client. Nothing is
// delivered: every published message lands in the sandbox's outbox.
type SNS struct {
	s       *Sandbox
	account string
}

// SNS returns the SNS client of the account.
func (s *Sandbox) SNS(accountID string) *SNS { return &SNS{s: s, account: accountID} }

type topic struct {
	Name string
	ARN  string
	Tags []tag `json:",omitempty"`
}

var topicName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

// CreateTopic creates a topic; creating an existing topic returns its ARN,
// as on AWS.
func (c *SNS) CreateTopic(ctx context.Context, in *sns.CreateTopicInput, _ ...func(*sns.Options)) (*sns.CreateTopicOutput, error) {
	in = orEmpty(in)
	var out *sns.CreateTopicOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateTopicInput", param{"Name", in.Name != nil}); err != nil {
			return err
		}
		if !topicName.MatchString(*in.Name) {
			return &snstypes.InvalidParameterException{Message: msg("Invalid parameter: Topic Name")}
		}
		a := c.s.acct(c.account)
		arn := fmt.Sprintf("arn:aws:sns:%s:%s:%s", c.s.region, c.account, *in.Name)
		if a.topics[arn] == nil {
			t := &topic{Name: *in.Name, ARN: arn}
			for _, x := range in.Tags {
				t.Tags = append(t.Tags, tag{Key: aws.ToString(x.Key), Value: aws.ToString(x.Value)})
			}
			a.topics[arn] = t
			c.s.touch(c.account, kindTopic, arn)
		}
		out = &sns.CreateTopicOutput{TopicArn: aws.String(arn)}
		return nil
	})
	return out, fail("SNS", "CreateTopic", err)
}

// DeleteTopic deletes a topic; deleting a missing topic succeeds, as on AWS.
func (c *SNS) DeleteTopic(ctx context.Context, in *sns.DeleteTopicInput, _ ...func(*sns.Options)) (*sns.DeleteTopicOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeleteTopicInput", param{"TopicArn", in.TopicArn != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		if a.topics[*in.TopicArn] != nil {
			delete(a.topics, *in.TopicArn)
			c.s.touch(c.account, kindTopic, *in.TopicArn)
		}
		return nil
	})
	if err != nil {
		return nil, fail("SNS", "DeleteTopic", err)
	}
	return &sns.DeleteTopicOutput{}, nil
}

// ListTopics lists the account's topics by ARN, 100 at a time.
func (c *SNS) ListTopics(ctx context.Context, in *sns.ListTopicsInput, _ ...func(*sns.Options)) (*sns.ListTopicsOutput, error) {
	in = orEmpty(in)
	var out *sns.ListTopicsOutput
	err := c.s.read(ctx, func() error {
		a := c.s.peek(c.account)
		arns := make([]string, 0, len(a.topics))
		for arn := range a.topics {
			arns = append(arns, arn)
		}
		sort.Strings(arns)
		from, to, next, err := page(arns, in.NextToken, nil, 100)
		if err != nil {
			return &snstypes.InvalidParameterException{Message: msg("Invalid parameter: NextToken")}
		}
		out = &sns.ListTopicsOutput{NextToken: next, Topics: []snstypes.Topic{}}
		for _, arn := range arns[from:to] {
			out.Topics = append(out.Topics, snstypes.Topic{TopicArn: aws.String(arn)})
		}
		return nil
	})
	return out, fail("SNS", "ListTopics", err)
}

// Publish appends the message to the outbox and returns its id.
func (c *SNS) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	in = orEmpty(in)
	var out *sns.PublishOutput
	err := c.s.write(ctx, func() error {
		if err := required("PublishInput", param{"Message", in.Message != nil}); err != nil {
			return err
		}
		arn := aws.ToString(in.TopicArn)
		if arn == "" {
			arn = aws.ToString(in.TargetArn)
		}
		if arn == "" {
			if in.PhoneNumber != nil {
				return &snstypes.InvalidParameterException{Message: msg("Invalid parameter: the sandbox does not send SMS")}
			}
			return &snstypes.InvalidParameterException{Message: msg("Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")}
		}
		if !strings.HasPrefix(arn, "arn:aws:sns:") {
			return &snstypes.InvalidParameterException{Message: msg("Invalid parameter: TopicArn")}
		}
		if *in.Message == "" {
			return &snstypes.InvalidParameterException{Message: msg("Invalid parameter: Empty message")}
		}
		if len(*in.Message) > 256*1024 {
			return &snstypes.InvalidParameterException{Message: msg("Invalid parameter: Message too long")}
		}
		if in.Subject != nil && (len(*in.Subject) > 100 || strings.ContainsAny(*in.Subject, "\n\r")) {
			return &snstypes.InvalidParameterException{Message: msg("Invalid parameter: Subject")}
		}
		// A topic of another account in the sandbox is reachable too: the
		// sandbox does not model topic policies.
		acct := arnAccount(arn)
		a := c.s.accounts[acct]
		if a == nil || a.topics[arn] == nil {
			return &snstypes.NotFoundException{Message: msg("Topic does not exist")}
		}
		m := Message{Account: acct, TopicArn: arn, MessageID: c.s.uuid(), Subject: aws.ToString(in.Subject), Body: *in.Message, Time: c.s.now().UTC()}
		if len(in.MessageAttributes) > 0 {
			m.Attributes = map[string]string{}
			for k, v := range in.MessageAttributes {
				if v.DataType == nil {
					return &snstypes.InvalidParameterValueException{Message: msg(fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute type.", truncate(k)))}
				}
				if v.BinaryValue != nil {
					m.Attributes[k] = string(v.BinaryValue)
				} else {
					m.Attributes[k] = aws.ToString(v.StringValue)
				}
			}
		}
		c.s.outbox = append(c.s.outbox, m)
		c.s.newMsgs = append(c.s.newMsgs, len(c.s.outbox)-1)
		out = &sns.PublishOutput{MessageId: aws.String(m.MessageID)}
		return nil
	})
	return out, fail("SNS", "Publish", err)
}

// arnAccount is the account field of an ARN.
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}
