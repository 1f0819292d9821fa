package policy

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden keeps the generated documents under review: they are what IAM
// (and a person reading the template) sees.
func TestGolden(t *testing.T) {
	ip, err := SourceIPRestriction([]string{"203.0.113.0/24", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]*Document{"mfa-required.json": MFARequired(""), "source-ip.json": ip} {
		t.Run(name, func(t *testing.T) {
			got, err := doc.JSON()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./policy -run Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s changed; if deliberate, run go test ./policy -run Golden -update\n%s", path, got)
			}
			back, err := Parse(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, doc) {
				t.Errorf("Parse(JSON()) = %+v, want %+v", back, doc)
			}
		})
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name, in string
		pointer  string // "" means ok
	}{
		{"one statement object, scalar values", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}`, ""},
		{"bool and number condition values", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["*"],"Condition":{"Bool":{"aws:SecureTransport":true},"StringEquals":{"s3:max-keys":10}}}]}`, ""},
		{"old version", `{"Version":"2008-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}`, "/Version"},
		{"no statement", `{"Version":"2012-10-17"}`, "/Statement"},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, "/Statement"},
		{"bad effect", `{"Version":"2012-10-17","Statement":{"Effect":"Alow","Action":"*","Resource":"*"}}`, "/Statement/0/Effect"},
		{"action and notaction", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","NotAction":"s3:*","Resource":"*"}}`, "/Statement/0"},
		{"no resource", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*"}}`, "/Statement/0"},
		{"principal in an identity policy", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}`, "/Statement/0"},
		{"misspelt field", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","NotResouce":"*"}}`, "/Statement/0"},
		{"action without service", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"GetUser","Resource":"*"}}`, "/Statement/0/Action/0"},
		{"unknown operator", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2020-01-01"}}}}`, "/Statement/0/Condition/DateLessThan"},
		{"NullIfExists", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}}`, "/Statement/0/Condition/NullIfExists"},
		{"bad bool", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"k":"yes"}}}}`, "/Statement/0/Condition/Bool/k"},
		{"bad cidr", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/40"}}}}`, "/Statement/0/Condition/NotIpAddress/aws:SourceIp"},
		{"duplicate sid", `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}`, "/Statement/1/Sid"},
		{"object value", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":{"x":1},"Resource":"*"}}`, "/Statement/0"},
		{"trailing data", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}} {}`, "/"},
		{"not json", `Version: 2012-10-17`, "/"},
		{"too large", `{"Version":"2012-10-17","Id":"` + strings.Repeat("x", maxDocument) + `"}`, "/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			if c.pointer == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *policy.Error at %s", err, c.pointer)
			}
			if pe.Pointer != c.pointer {
				t.Errorf("pointer %q, want %q (%v)", pe.Pointer, c.pointer, err)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Errorf("error %q is not package-prefixed", err)
			}
		})
	}
}

// FuzzParse: Parse never panics, and what it accepts re-encodes to a
// document that parses to the same value and evaluates without error.
func FuzzParse(f *testing.F) {
	for _, d := range []*Document{MFARequired(""), admin} {
		b, _ := d.JSON()
		f.Add(b)
	}
	ip, _ := SourceIPRestriction(ranges)
	b, _ := ip.JSON()
	f.Add(b)
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:${aws:username}${*}${x","Condition":{"Null":{"k":true}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			return
		}
		out, err := doc.JSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded document refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(doc, again) {
			t.Fatalf("round trip changed the document:\n%+v\n%+v", doc, again)
		}
		req := Request{Action: "iam:GetUser", Resource: "arn:aws:iam::1:user/a*", Context: map[string][]string{KeyUserName: {"a?"}, KeySourceIP: {"10.0.0.1"}, "k": {"x"}}}
		if _, err := Evaluate(req, doc); err != nil {
			t.Fatalf("Evaluate refused a parsed document: %v", err)
		}
	})
}
