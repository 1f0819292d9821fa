package sandbox

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// SeedOptions sizes a seeded Organization.
type SeedOptions struct {
	// Accounts is the number of member accounts that get users (the
	// management account is always there and gets none). Default 3.
	Accounts int
	// UsersPerAccount is the number of IAM users in each member account.
	// Default 100.
	UsersPerAccount int
	// Suspended adds that many SUSPENDED member accounts (no users), which an
	// inventory must skip.
	Suspended int
	// Seed makes the result reproducible: the same seed gives the same
	// accounts, users, key ids, ages and tags. Secret access keys are never
	// derived from it (Seed keeps none anyway).
	Seed int64
	// Now is the instant key ages are measured from; zero means the
	// sandbox's clock.
	Now time.Time
}

// SeedReport counts what Seed built.
type SeedReport struct {
	ManagementAccount   string
	MemberAccounts      []string // in creation order, users first, suspended last
	OrganizationalUnits int
	Users               int
	Keys                int
	ActiveKeys          int
	UsersWithTwoKeys    int
	UsersWithoutKeys    int
	// Key ages in days at Now: under 45, 45 to 59, 60 to 89, 90 and older.
	KeysUnder45, Keys45To60, Keys60To90, Keys90Plus int
	KeysUsed                                        int // keys with a last-used record
	KeysUsedRecently                                int // last used within 7 days of Now
	Admins                                          int // members of the "admins" group
	Exempt                                          int // users tagged keyflow:exempt=true
	ExemptLapsed                                    int // of those, with a keyflow:exempt-expiry before Now
	Owners                                          int // users with an owner tag
	ConsoleUsers                                    int // users with a login profile
	MFAUsers                                        int // console users with an MFA device
	Topics                                          int
}

// Names of what Seed creates, for the code and tests that look for them.
const (
	SeedMemberRole   = "KeyflowMemberRole"
	SeedAdminsGroup  = "admins"
	SeedTopic        = "keyflow-notifications"
	TagExempt        = "keyflow:exempt"
	TagExemptReason  = "keyflow:exempt-reason"
	TagExemptOwner   = "keyflow:exempt-owner"
	TagExemptExpiry  = "keyflow:exempt-expiry" // YYYY-MM-DD
	TagOwner         = "owner"
	seedDeveloperPol = "keyflow-seed-developer"
)

var (
	seedFirst = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yara"}
	seedLast  = []string{"smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "moore", "taylor", "thomas", "lee", "white", "harris", "clark", "lewis"}
	seedApps  = []string{"billing", "ci", "backup", "etl", "reports", "search", "deploy", "metrics"}
	seedOUs   = [][]string{{"Prod", "Workloads"}, {"Dev"}, {"Security"}, {"Prod", "Data"}, {"Dev", "Sandbox"}}
)

// Seed builds a realistic Organization in s: member accounts in nested OUs
// (Prod/Workloads, Dev, Security, ...), each with an SNS topic
// "keyflow-notifications", the assumable role "KeyflowMemberRole", an
// "admins" group and UsersPerAccount users whose keys have ages from 0 to 400
// days (so that some are due at 45 days, some past 60 and 90), some with two
// keys, some in admins, some exempt by tag (some exemptions lapsed), most
// with an owner e-mail tag, some keys recently used, some console users with
// and without MFA. Everything is written in one transaction. Seed refuses an
// account that already has users.
func Seed(s *Sandbox, o SeedOptions) (SeedReport, error) {
	if o.Accounts == 0 {
		o.Accounts = 3
	}
	if o.UsersPerAccount == 0 {
		o.UsersPerAccount = 100
	}
	if o.Accounts < 0 || o.UsersPerAccount < 0 || o.Suspended < 0 || o.Accounts+o.Suspended > 99 {
		return SeedReport{}, fmt.Errorf("sandbox: seed: accounts %d, suspended %d and users %d must be positive, at most 99 accounts", o.Accounts, o.Suspended, o.UsersPerAccount)
	}
	var rep SeedReport
	err := s.write(context.Background(), func() error {
		r := mrand.New(mrand.NewPCG(uint64(o.Seed), 0x6b6579666c6f77)) // "keyflow"
		saved := s.ids
		s.ids = seededIDs{r}
		defer func() { s.ids = saved }()
		now := o.Now.UTC().Truncate(time.Second)
		if o.Now.IsZero() {
			now = s.clock()
		}
		rep.ManagementAccount = s.mgmt
		s.seedAccount(s.mgmt, now)
		for i := 0; i < o.Accounts+o.Suspended; i++ {
			id := fmt.Sprintf("2%02d%09d", i+1, (i+1)*123456789%1000000000)
			if a := s.accounts[id]; a != nil && len(a.users) > 0 {
				return fmt.Errorf("sandbox: seed: account %s already has users", id)
			}
			path := seedOUs[i%len(seedOUs)]
			name := strings.ToLower(strings.Join(path, "-")) + fmt.Sprintf("-%02d", i+1)
			if i >= o.Accounts {
				path, name = []string{"Suspended"}, fmt.Sprintf("closed-%02d", i+1)
			}
			if err := s.addAccount(id, name, path); err != nil {
				return err
			}
			s.org.accounts[id].Joined = now.AddDate(-2, 0, 0)
			rep.MemberAccounts = append(rep.MemberAccounts, id)
			if i >= o.Accounts {
				s.org.accounts[id].Status = "SUSPENDED"
				continue
			}
			s.seedAccount(id, now)
			for j := 0; j < o.UsersPerAccount; j++ {
				s.seedUser(r, id, j, now, &rep)
			}
		}
		rep.OrganizationalUnits = len(s.org.ous)
		rep.Topics = o.Accounts + 1
		return nil
	})
	if err != nil {
		return SeedReport{}, err
	}
	return rep, nil
}

// seedAccount gives an account what keyflow expects: the member role, the
// notification topic, the admins group and a password policy.
func (s *Sandbox) seedAccount(id string, now time.Time) {
	a := s.acct(id)
	a.roles[SeedMemberRole] = true
	a.passwordPolicy = &passwordPolicy{types.PasswordPolicy{MinimumPasswordLength: ptr(int32(14)), RequireLowercaseCharacters: true,
		RequireUppercaseCharacters: true, RequireNumbers: true, RequireSymbols: true, AllowUsersToChangePassword: true,
		MaxPasswordAge: ptr(int32(90)), ExpirePasswords: true, PasswordReusePrevention: ptr(int32(24))}}
	s.touch(id, kindAccount, id)
	arn := fmt.Sprintf("arn:aws:sns:%s:%s:%s", s.region, id, SeedTopic)
	a.topics[arn] = &topic{Name: SeedTopic, ARN: arn}
	s.touch(id, kindTopic, arn)
	if a.groups[SeedAdminsGroup] == nil {
		a.groups[SeedAdminsGroup] = &group{Name: SeedAdminsGroup, Path: "/", ID: s.uniqueID("AGPA"), Created: now.AddDate(-3, 0, 0)}
		s.touch(id, kindGroup, SeedAdminsGroup)
	}
	parn := "arn:aws:iam::" + id + ":policy/" + seedDeveloperPol
	if a.policies[parn] == nil {
		a.policies[parn] = &policy{Name: seedDeveloperPol, Path: "/", ID: s.uniqueID("ANPA"), ARN: parn, Created: now.AddDate(-3, 0, 0),
			Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}`}
		s.touch(id, kindPolicy, parn)
	}
}

func ptr[T any](v T) *T { return &v }

// keyAge draws a key age in days: a third of keys are fresh, the rest spread
// over the 45/60/90-day marks that the lifecycle acts on, up to 400 days.
func keyAge(r *mrand.Rand) int {
	switch p := r.IntN(100); {
	case p < 35:
		return r.IntN(45)
	case p < 50:
		return 45 + r.IntN(15)
	case p < 65:
		return 60 + r.IntN(30)
	default:
		return 90 + r.IntN(311)
	}
}

func (s *Sandbox) seedUser(r *mrand.Rand, acctID string, j int, now time.Time, rep *SeedReport) {
	a := s.accounts[acctID]
	var name, email string
	if r.IntN(5) == 0 {
		name = fmt.Sprintf("svc-%s-%04d", seedApps[r.IntN(len(seedApps))], j)
		email = "platform-team@example.com"
	} else {
		first, last := seedFirst[r.IntN(len(seedFirst))], seedLast[r.IntN(len(seedLast))]
		name = fmt.Sprintf("%s.%s-%04d", first, last, j)
		email = first + "." + last + "@example.com"
	}
	age := keyAge(r)
	created := now.AddDate(0, 0, -(age + 1 + r.IntN(300)))
	u := &user{Name: name, Path: "/", ID: s.uniqueID("AIDA"), Created: created}
	a.users[strings.ToLower(name)] = u
	s.touch(acctID, kindUser, name)
	rep.Users++

	if r.IntN(100) < 85 {
		u.Tags = append(u.Tags, tag{TagOwner, email})
		rep.Owners++
	}
	if r.IntN(100) < 3 {
		expiry := now.AddDate(0, 0, r.IntN(180)-30)
		u.Tags = append(u.Tags, tag{TagExempt, "true"}, tag{TagExemptReason, "vendor integration without key rotation support"},
			tag{TagExemptOwner, "security@example.com"}, tag{TagExemptExpiry, expiry.Format("2006-01-02")})
		rep.Exempt++
		if expiry.Before(now) {
			rep.ExemptLapsed++
		}
	}
	if r.IntN(100) < 2 {
		g := a.groups[SeedAdminsGroup]
		g.Members = append(g.Members, name)
		s.touch(acctID, kindGroup, g.Name)
		rep.Admins++
	}
	if r.IntN(100) < 25 {
		u.Attached = append(u.Attached, "arn:aws:iam::"+acctID+":policy/"+seedDeveloperPol)
	}
	if r.IntN(100) < 10 {
		u.Inline = map[string]string{"read-own-secret": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`}
	}
	if !strings.HasPrefix(name, "svc-") && r.IntN(100) < 40 {
		u.Login = &loginProfile{Created: created.Add(time.Hour)}
		rep.ConsoleUsers++
		if r.IntN(2) == 0 {
			serial := "arn:aws:iam::" + acctID + ":mfa/" + name
			en := created.Add(2 * time.Hour)
			a.mfa[serial] = &mfaDevice{Serial: serial, Path: "/", User: name, Created: en, Enabled: &en}
			s.touch(acctID, kindMFA, serial)
			rep.MFAUsers++
		}
	}

	n := 1
	switch p := r.IntN(100); {
	case p < 10:
		n = 0
	case p < 25:
		n = 2
	}
	if n == 0 {
		rep.UsersWithoutKeys++
		return
	}
	if n == 2 {
		rep.UsersWithTwoKeys++
	}
	ages := []int{age}
	if n == 2 {
		// The second key is the newer one: a rotation half done, or a user
		// who keeps two keys on purpose.
		ages = append(ages, r.IntN(age+1))
	}
	for i, d := range ages {
		k := s.newKey(acctID, u, now.AddDate(0, 0, -d).Add(-time.Duration(r.IntN(86400))*time.Second))
		if k.Created.Before(u.Created) {
			k.Created = u.Created
		}
		rep.Keys++
		switch {
		case d < 45:
			rep.KeysUnder45++
		case d < 60:
			rep.Keys45To60++
		case d < 90:
			rep.Keys60To90++
		default:
			rep.Keys90Plus++
		}
		if n == 2 && i == 0 && r.IntN(3) == 0 {
			k.Status = string(types.StatusTypeInactive)
		} else {
			rep.ActiveKeys++
		}
		if k.Status == string(types.StatusTypeActive) && r.IntN(100) < 60 {
			span := now.Sub(k.Created)
			used := k.Created.Add(time.Duration(r.Int64N(int64(span) + 1)))
			if r.IntN(3) == 0 {
				used = now.Add(-time.Duration(r.IntN(3*86400)) * time.Second) // in use right now
				if used.Before(k.Created) {
					used = k.Created
				}
			}
			used = used.Truncate(time.Second)
			k.LastUsed, k.LastService, k.LastRegion = &used, []string{"s3", "sts", "ec2", "dynamodb", "iam"}[r.IntN(5)], s.region
			rep.KeysUsed++
			if now.Sub(used) < 7*24*time.Hour {
				rep.KeysUsedRecently++
			}
		}
	}
}
