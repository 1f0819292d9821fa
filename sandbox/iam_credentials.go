package sandbox

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// This file holds the console side of a user: virtual MFA devices, login
// profiles and the account password policy.

// userMFA lists the serials of the devices enabled for a user, sorted.
func (a *account) userMFA(userName string) []*mfaDevice {
	var out []*mfaDevice
	for _, d := range a.mfa {
		if d.User != "" && strings.EqualFold(d.User, userName) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Serial < out[j].Serial })
	return out
}

// CreateVirtualMFADevice creates an unassigned virtual MFA device. Its seed
// is returned once and not kept, like a secret access key.
func (c *IAM) CreateVirtualMFADevice(ctx context.Context, in *iam.CreateVirtualMFADeviceInput, _ ...func(*iam.Options)) (*iam.CreateVirtualMFADeviceOutput, error) {
	in = orEmpty(in)
	var out *iam.CreateVirtualMFADeviceOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateVirtualMFADeviceInput", param{"VirtualMFADeviceName", in.VirtualMFADeviceName != nil}); err != nil {
			return err
		}
		if err := validName("virtualMFADeviceName", *in.VirtualMFADeviceName, 226); err != nil {
			return err
		}
		path, err := validPath(in.Path)
		if err != nil {
			return err
		}
		a := c.s.acct(c.account)
		serial := c.arn("mfa", path, *in.VirtualMFADeviceName)
		if a.mfa[serial] != nil {
			return &types.EntityAlreadyExistsException{Message: msg("MFADevice entity at the same path and name already exists.")}
		}
		d := &mfaDevice{Serial: serial, Path: path, Created: c.s.clock()}
		a.mfa[serial] = d
		c.s.touch(c.account, kindMFA, serial)
		out = &iam.CreateVirtualMFADeviceOutput{VirtualMFADevice: &types.VirtualMFADevice{
			SerialNumber:     aws.String(serial),
			Base32StringSeed: []byte(cryptoIDs{}.pick(64, base32)),
			EnableDate:       nil,
		}}
		return nil
	})
	return out, fail("IAM", "CreateVirtualMFADevice", err)
}

func sixDigits(s *string) bool {
	if s == nil || len(*s) != 6 {
		return false
	}
	for _, r := range *s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// EnableMFADevice assigns a device to a user. The sandbox accepts any two
// six-digit codes: it has no authenticator to check them against.
func (c *IAM) EnableMFADevice(ctx context.Context, in *iam.EnableMFADeviceInput, _ ...func(*iam.Options)) (*iam.EnableMFADeviceOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("EnableMFADeviceInput",
			param{"AuthenticationCode1", in.AuthenticationCode1 != nil}, param{"AuthenticationCode2", in.AuthenticationCode2 != nil},
			param{"SerialNumber", in.SerialNumber != nil}, param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		d := a.mfa[*in.SerialNumber]
		if d == nil {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("MFA Device with serial number %s does not exist.", truncate(*in.SerialNumber)))}
		}
		if d.User != "" {
			return &types.EntityAlreadyExistsException{Message: msg("MFA Device is already in use.")}
		}
		if !sixDigits(in.AuthenticationCode1) || !sixDigits(in.AuthenticationCode2) {
			return &types.InvalidAuthenticationCodeException{Message: msg("Authentication code for device is not valid.")}
		}
		now := c.s.clock()
		d.User, d.Enabled = u.Name, &now
		c.s.touch(c.account, kindMFA, d.Serial)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "EnableMFADevice", err)
	}
	return &iam.EnableMFADeviceOutput{}, nil
}

// DeactivateMFADevice unassigns a device from its user; the device remains.
func (c *IAM) DeactivateMFADevice(ctx context.Context, in *iam.DeactivateMFADeviceInput, _ ...func(*iam.Options)) (*iam.DeactivateMFADeviceOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeactivateMFADeviceInput", param{"SerialNumber", in.SerialNumber != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		if in.UserName != nil {
			if _, err := a.findUser(*in.UserName); err != nil {
				return err
			}
		}
		d := a.mfa[*in.SerialNumber]
		if d == nil || d.User == "" || (in.UserName != nil && !strings.EqualFold(d.User, *in.UserName)) {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("MFA Device with serial number %s does not exist.", truncate(*in.SerialNumber)))}
		}
		d.User, d.Enabled = "", nil
		c.s.touch(c.account, kindMFA, d.Serial)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeactivateMFADevice", err)
	}
	return &iam.DeactivateMFADeviceOutput{}, nil
}

// DeleteVirtualMFADevice deletes an unassigned device.
func (c *IAM) DeleteVirtualMFADevice(ctx context.Context, in *iam.DeleteVirtualMFADeviceInput, _ ...func(*iam.Options)) (*iam.DeleteVirtualMFADeviceOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeleteVirtualMFADeviceInput", param{"SerialNumber", in.SerialNumber != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		d := a.mfa[*in.SerialNumber]
		if d == nil {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("VirtualMFADevice with serial number %s doesn't exist.", truncate(*in.SerialNumber)))}
		}
		if d.User != "" {
			return &types.DeleteConflictException{Message: msg("VirtualMFADevice is still assigned to a user.")}
		}
		delete(a.mfa, d.Serial)
		c.s.touch(c.account, kindMFA, d.Serial)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeleteVirtualMFADevice", err)
	}
	return &iam.DeleteVirtualMFADeviceOutput{}, nil
}

// ListMFADevices lists the devices enabled for a user.
func (c *IAM) ListMFADevices(ctx context.Context, in *iam.ListMFADevicesInput, _ ...func(*iam.Options)) (*iam.ListMFADevicesOutput, error) {
	in = orEmpty(in)
	var out *iam.ListMFADevicesOutput
	err := c.s.read(ctx, func() error {
		if err := required("ListMFADevicesInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		a := c.s.peek(c.account)
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		ds := a.userMFA(u.Name)
		from, to, next, err := page(indexKeys(len(ds)), in.Marker, in.MaxItems, defaultMaxItems)
		if err != nil {
			return err
		}
		out = &iam.ListMFADevicesOutput{MFADevices: []types.MFADevice{}, IsTruncated: next != nil, Marker: next}
		for _, d := range ds[from:to] {
			out.MFADevices = append(out.MFADevices, types.MFADevice{UserName: aws.String(u.Name), SerialNumber: aws.String(d.Serial), EnableDate: d.Enabled})
		}
		return nil
	})
	return out, fail("IAM", "ListMFADevices", err)
}

// --- login profiles ---

// CreateLoginProfile gives a user console access. The password is checked
// against the account password policy and then forgotten.
func (c *IAM) CreateLoginProfile(ctx context.Context, in *iam.CreateLoginProfileInput, _ ...func(*iam.Options)) (*iam.CreateLoginProfileOutput, error) {
	in = orEmpty(in)
	var out *iam.CreateLoginProfileOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateLoginProfileInput", param{"UserName", in.UserName != nil}, param{"Password", in.Password != nil}); err != nil {
			return err
		}
		a := c.s.acct(c.account)
		u, err := a.findUser(*in.UserName)
		if err != nil {
			return err
		}
		if u.Login != nil {
			return &types.EntityAlreadyExistsException{Message: msg(fmt.Sprintf("Login Profile for user %s already exists.", u.Name))}
		}
		if err := a.checkPassword(*in.Password); err != nil {
			return err
		}
		u.Login = &loginProfile{Created: c.s.clock(), ResetRequired: in.PasswordResetRequired}
		c.s.touch(c.account, kindUser, u.Name)
		out = &iam.CreateLoginProfileOutput{LoginProfile: &types.LoginProfile{UserName: aws.String(u.Name), CreateDate: aws.Time(u.Login.Created), PasswordResetRequired: u.Login.ResetRequired}}
		return nil
	})
	return out, fail("IAM", "CreateLoginProfile", err)
}

// checkPassword applies the password policy; its messages never quote the
// password.
func (a *account) checkPassword(pw string) error {
	p := a.passwordPolicy
	if p == nil {
		return nil
	}
	bad := func(why string) error {
		return &types.PasswordPolicyViolationException{Message: msg("Password does not conform to the account password policy: " + why)}
	}
	if n := aws.ToInt32(p.MinimumPasswordLength); len(pw) < int(n) {
		return bad(fmt.Sprintf("minimum length %d", n))
	}
	has := func(f func(rune) bool) bool { return strings.IndexFunc(pw, f) >= 0 }
	switch {
	case p.RequireLowercaseCharacters && !has(unicode.IsLower):
		return bad("a lowercase letter is required")
	case p.RequireUppercaseCharacters && !has(unicode.IsUpper):
		return bad("an uppercase letter is required")
	case p.RequireNumbers && !has(unicode.IsDigit):
		return bad("a number is required")
	case p.RequireSymbols && !has(func(r rune) bool { return strings.ContainsRune("!@#$%^&*()_+-=[]{}|'", r) }):
		return bad("a symbol is required")
	}
	return nil
}

// GetLoginProfile reports whether a user has console access.
func (c *IAM) GetLoginProfile(ctx context.Context, in *iam.GetLoginProfileInput, _ ...func(*iam.Options)) (*iam.GetLoginProfileOutput, error) {
	in = orEmpty(in)
	var out *iam.GetLoginProfileOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetLoginProfileInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		u, err := c.s.peek(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		if u.Login == nil {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("Login Profile for User %s cannot be found.", u.Name))}
		}
		out = &iam.GetLoginProfileOutput{LoginProfile: &types.LoginProfile{UserName: aws.String(u.Name), CreateDate: aws.Time(u.Login.Created), PasswordResetRequired: u.Login.ResetRequired}}
		return nil
	})
	return out, fail("IAM", "GetLoginProfile", err)
}

// DeleteLoginProfile removes console access.
func (c *IAM) DeleteLoginProfile(ctx context.Context, in *iam.DeleteLoginProfileInput, _ ...func(*iam.Options)) (*iam.DeleteLoginProfileOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		if err := required("DeleteLoginProfileInput", param{"UserName", in.UserName != nil}); err != nil {
			return err
		}
		u, err := c.s.acct(c.account).findUser(*in.UserName)
		if err != nil {
			return err
		}
		if u.Login == nil {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("Login Profile for User %s cannot be found.", u.Name))}
		}
		u.Login = nil
		c.s.touch(c.account, kindUser, u.Name)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeleteLoginProfile", err)
	}
	return &iam.DeleteLoginProfileOutput{}, nil
}

// --- password policy ---

// GetAccountPasswordPolicy returns the policy; NoSuchEntity when none is set.
func (c *IAM) GetAccountPasswordPolicy(ctx context.Context, _ *iam.GetAccountPasswordPolicyInput, _ ...func(*iam.Options)) (*iam.GetAccountPasswordPolicyOutput, error) {
	var out *iam.GetAccountPasswordPolicyOutput
	err := c.s.read(ctx, func() error {
		p := c.s.peek(c.account).passwordPolicy
		if p == nil {
			return &types.NoSuchEntityException{Message: msg(fmt.Sprintf("The Password Policy with domain name %s cannot be found.", c.account))}
		}
		pp := p.PasswordPolicy
		out = &iam.GetAccountPasswordPolicyOutput{PasswordPolicy: &pp}
		return nil
	})
	return out, fail("IAM", "GetAccountPasswordPolicy", err)
}

// UpdateAccountPasswordPolicy replaces the policy; fields left out take
// AWS's defaults (minimum length 6, no expiry, no requirements).
func (c *IAM) UpdateAccountPasswordPolicy(ctx context.Context, in *iam.UpdateAccountPasswordPolicyInput, _ ...func(*iam.Options)) (*iam.UpdateAccountPasswordPolicyOutput, error) {
	in = orEmpty(in)
	err := c.s.write(ctx, func() error {
		minLen := aws.ToInt32(in.MinimumPasswordLength)
		if in.MinimumPasswordLength == nil {
			minLen = 6
		}
		if minLen < 6 || minLen > 128 {
			return apiError("ValidationError", "1 validation error detected: Value '%d' at 'minimumPasswordLength' failed to satisfy constraint: Member must have value between 6 and 128", minLen)
		}
		p := types.PasswordPolicy{
			AllowUsersToChangePassword: in.AllowUsersToChangePassword,
			ExpirePasswords:            aws.ToInt32(in.MaxPasswordAge) > 0,
			HardExpiry:                 in.HardExpiry,
			MaxPasswordAge:             in.MaxPasswordAge,
			MinimumPasswordLength:      aws.Int32(minLen),
			PasswordReusePrevention:    in.PasswordReusePrevention,
			RequireLowercaseCharacters: in.RequireLowercaseCharacters,
			RequireNumbers:             in.RequireNumbers,
			RequireSymbols:             in.RequireSymbols,
			RequireUppercaseCharacters: in.RequireUppercaseCharacters,
		}
		c.s.acct(c.account).passwordPolicy = &passwordPolicy{p}
		c.s.touch(c.account, kindAccount, c.account)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "UpdateAccountPasswordPolicy", err)
	}
	return &iam.UpdateAccountPasswordPolicyOutput{}, nil
}

// DeleteAccountPasswordPolicy removes the policy.
func (c *IAM) DeleteAccountPasswordPolicy(ctx context.Context, _ *iam.DeleteAccountPasswordPolicyInput, _ ...func(*iam.Options)) (*iam.DeleteAccountPasswordPolicyOutput, error) {
	err := c.s.write(ctx, func() error {
		a := c.s.acct(c.account)
		if a.passwordPolicy == nil {
			return &types.NoSuchEntityException{Message: msg("The account policy with name PasswordPolicy cannot be found.")}
		}
		a.passwordPolicy = nil
		c.s.touch(c.account, kindAccount, c.account)
		return nil
	})
	if err != nil {
		return nil, fail("IAM", "DeleteAccountPasswordPolicy", err)
	}
	return &iam.DeleteAccountPasswordPolicyOutput{}, nil
}
