package sandbox

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 is one account's S3, with the methods of *s3.Client that the audit
// record store calls (and the few a test needs to look at what it wrote):
// buckets, and objects written whole with the conditional writes
// (If-None-Match: *, If-Match: <ETag>) that keep the audit chain from
// forking. Bucket names are global across the sandbox's accounts, as they
// are across AWS.
type S3 struct {
	s       *Sandbox
	account string
}

// S3 returns the S3 client of the account.
func (s *Sandbox) S3(accountID string) *S3 { return &S3{s: s, account: accountID} }

type bucket struct {
	Name    string
	Owner   string
	Region  string
	Created time.Time
	// objects is persisted row by row (kindObject), not with the bucket.
	objects map[string]*s3Object
}

type s3Object struct {
	Bucket      string
	Key         string
	Body        []byte
	ETag        string
	ContentType string `json:",omitempty"`
	Modified    time.Time
}

// maxSandboxObject bounds one object: the sandbox keeps objects in memory
// and in SQLite rows, and keyflow's largest object is an audit record.
const maxSandboxObject = 16 << 20

// bucketName is S3's general purpose bucket naming rule (3 to 63 lower-case
// letters, digits, dots and hyphens, starting and ending with a letter or
// digit); IP-address shapes and ".." are refused separately.
var (
	bucketName  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ipShapeName = regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`)
)

func validBucketName(n string) bool {
	return bucketName.MatchString(n) && !ipShapeName.MatchString(n) && !strings.Contains(n, "..") &&
		!strings.Contains(n, ".-") && !strings.Contains(n, "-.") && !strings.HasPrefix(n, "xn--")
}

// s3Error is an S3 error code the SDK has no typed error for (it returns a
// *smithy.GenericAPIError for PreconditionFailed, InvalidBucketName, ...).
func s3Error(code, message string) error {
	return &smithy.GenericAPIError{Code: code, Message: message, Fault: smithy.FaultClient}
}

func etag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// bucketFor returns the named bucket, creating an empty placeholder when a
// stored object is loaded before its bucket's row. Callers hold the lock.
func (s *Sandbox) bucketFor(name string) *bucket {
	if s.buckets == nil {
		s.buckets = map[string]*bucket{}
	}
	b := s.buckets[name]
	if b == nil {
		b = &bucket{Name: name, objects: map[string]*s3Object{}}
		s.buckets[name] = b
	}
	return b
}

// CreateBucket creates a bucket owned by the account. In us-east-1, asking
// again for a bucket the account owns succeeds (AWS's legacy behaviour
// there); elsewhere it is BucketAlreadyOwnedByYou. A name another account
// owns is BucketAlreadyExists.
func (c *S3) CreateBucket(ctx context.Context, in *s3.CreateBucketInput, _ ...func(*s3.Options)) (*s3.CreateBucketOutput, error) {
	in = orEmpty(in)
	var out *s3.CreateBucketOutput
	err := c.s.write(ctx, func() error {
		if err := required("CreateBucketInput", param{"Bucket", in.Bucket != nil}); err != nil {
			return err
		}
		name := *in.Bucket
		if !validBucketName(name) {
			return s3Error("InvalidBucketName", "The specified bucket is not valid.")
		}
		region := c.s.region
		if in.CreateBucketConfiguration != nil && in.CreateBucketConfiguration.LocationConstraint != "" {
			region = string(in.CreateBucketConfiguration.LocationConstraint)
		}
		if region != c.s.region {
			return s3Error("IllegalLocationConstraintException", fmt.Sprintf("The %s location constraint is incompatible for the region specific endpoint this request was sent to.", truncate(region)))
		}
		out = &s3.CreateBucketOutput{Location: aws.String("/" + name)}
		if b := c.s.buckets[name]; b != nil && b.Owner != "" {
			if b.Owner != c.account {
				return &s3types.BucketAlreadyExists{Message: msg("The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")}
			}
			if c.s.region == "us-east-1" {
				return nil
			}
			return &s3types.BucketAlreadyOwnedByYou{Message: msg("Your previous request to create the named bucket succeeded and you already own it.")}
		}
		b := c.s.bucketFor(name)
		b.Owner, b.Region, b.Created = c.account, region, c.s.clock()
		c.s.touch(c.account, kindBucket, name)
		return nil
	})
	return out, fail("S3", "CreateBucket", err)
}

// bucket returns the named bucket the caller may use, or NoSuchBucket. The
// sandbox has no bucket policies: only the owner's account reaches it.
func (c *S3) bucket(name string) (*bucket, error) {
	b := c.s.buckets[name]
	if b == nil || b.Owner == "" {
		return nil, &s3types.NoSuchBucket{Message: msg("The specified bucket does not exist")}
	}
	if b.Owner != c.account {
		return nil, s3Error("AccessDenied", "Access Denied")
	}
	return b, nil
}

func validKey(key string) error {
	if key == "" {
		return s3Error("InvalidArgument", "Object key must not be empty")
	}
	if len(key) > 1024 {
		return s3Error("KeyTooLongError", "Your key is too long")
	}
	if !utf8.ValidString(key) {
		return s3Error("InvalidArgument", "Object key must be UTF-8")
	}
	return nil
}

// PutObject stores an object whole. If-None-Match (only "*", as on AWS)
// refuses to replace an existing object and If-Match refuses to replace an
// object whose ETag differs, both with PreconditionFailed (412); If-Match on
// a missing object is NoSuchKey. The check and the write are one step, as
// S3's conditional writes are.
func (c *S3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	in = orEmpty(in)
	if err := required("PutObjectInput", param{"Bucket", in.Bucket != nil}, param{"Key", in.Key != nil}); err != nil {
		return nil, fail("S3", "PutObject", err)
	}
	// Read the body before taking the lock: a reader may block.
	var body []byte
	if in.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(in.Body, maxSandboxObject+1))
		if err != nil {
			return nil, fail("S3", "PutObject", fmt.Errorf("sandbox: reading the object body: %w", err))
		}
		if len(body) > maxSandboxObject {
			return nil, fail("S3", "PutObject", s3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"))
		}
	}
	var out *s3.PutObjectOutput
	err := c.s.write(ctx, func() error {
		b, err := c.bucket(*in.Bucket)
		if err != nil {
			return err
		}
		key := *in.Key
		if err := validKey(key); err != nil {
			return err
		}
		old := b.objects[key]
		if in.IfNoneMatch != nil {
			if *in.IfNoneMatch != "*" {
				return s3Error("NotImplemented", "A header you provided implies functionality that is not implemented")
			}
			if old != nil {
				return s3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
			}
		}
		if in.IfMatch != nil {
			if old == nil {
				return &s3types.NoSuchKey{Message: msg("The specified key does not exist.")}
			}
			if !etagMatches(*in.IfMatch, old.ETag) {
				return s3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
			}
		}
		o := &s3Object{Bucket: b.Name, Key: key, Body: bytes.Clone(body), ETag: etag(body), ContentType: aws.ToString(in.ContentType), Modified: c.s.clock()}
		if o.Body == nil {
			o.Body = []byte{}
		}
		b.objects[key] = o
		c.s.touch(b.Owner, kindObject, b.Name+"/"+key)
		out = &s3.PutObjectOutput{ETag: aws.String(o.ETag)}
		return nil
	})
	return out, fail("S3", "PutObject", err)
}

// etagMatches compares an If-Match value with an ETag; S3 accepts the
// value with or without its quotes, and "*" for any object.
func etagMatches(cond, tag string) bool {
	return cond == "*" || strings.Trim(cond, `"`) == strings.Trim(tag, `"`)
}

// object finds an object for Get and Head; notFound is the error of a
// missing one (NoSuchKey for GetObject, NotFound for HeadObject, which has
// no body to carry a code, so the SDK names it by its status).
func (c *S3) object(bucketName, key *string, ifMatch, ifNoneMatch *string, head bool) (*s3Object, error) {
	b := c.s.buckets[aws.ToString(bucketName)]
	if head && (b == nil || b.Owner == "") {
		return nil, &s3types.NotFound{Message: msg("Not Found")}
	}
	b, err := c.bucket(aws.ToString(bucketName))
	if err != nil {
		return nil, err
	}
	o := b.objects[aws.ToString(key)]
	if o == nil {
		if head {
			return nil, &s3types.NotFound{Message: msg("Not Found")}
		}
		return nil, &s3types.NoSuchKey{Message: msg("The specified key does not exist.")}
	}
	if ifMatch != nil && !etagMatches(*ifMatch, o.ETag) {
		return nil, s3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	}
	if ifNoneMatch != nil && etagMatches(*ifNoneMatch, o.ETag) {
		return nil, s3Error("NotModified", "Not Modified")
	}
	return o, nil
}

// GetObject returns an object's bytes (a copy) and metadata.
func (c *S3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	in = orEmpty(in)
	var out *s3.GetObjectOutput
	err := c.s.read(ctx, func() error {
		if err := required("GetObjectInput", param{"Bucket", in.Bucket != nil}, param{"Key", in.Key != nil}); err != nil {
			return err
		}
		o, err := c.object(in.Bucket, in.Key, in.IfMatch, in.IfNoneMatch, false)
		if err != nil {
			return err
		}
		out = &s3.GetObjectOutput{
			Body: io.NopCloser(bytes.NewReader(bytes.Clone(o.Body))), ETag: aws.String(o.ETag),
			ContentLength: aws.Int64(int64(len(o.Body))), LastModified: aws.Time(o.Modified),
		}
		if o.ContentType != "" {
			out.ContentType = aws.String(o.ContentType)
		}
		return nil
	})
	return out, fail("S3", "GetObject", err)
}

// HeadObject returns an object's metadata; a missing bucket or key is
// NotFound.
func (c *S3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	in = orEmpty(in)
	var out *s3.HeadObjectOutput
	err := c.s.read(ctx, func() error {
		if err := required("HeadObjectInput", param{"Bucket", in.Bucket != nil}, param{"Key", in.Key != nil}); err != nil {
			return err
		}
		o, err := c.object(in.Bucket, in.Key, in.IfMatch, in.IfNoneMatch, true)
		if err != nil {
			return err
		}
		out = &s3.HeadObjectOutput{ETag: aws.String(o.ETag), ContentLength: aws.Int64(int64(len(o.Body))), LastModified: aws.Time(o.Modified)}
		if o.ContentType != "" {
			out.ContentType = aws.String(o.ContentType)
		}
		return nil
	})
	return out, fail("S3", "HeadObject", err)
}

// ListObjectsV2 lists keys in UTF-8 binary order, after StartAfter or the
// continuation token, under Prefix, at most MaxKeys (default and cap 1000)
// at a time. Delimiters are not supported.
func (c *S3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	in = orEmpty(in)
	var out *s3.ListObjectsV2Output
	err := c.s.read(ctx, func() error {
		if err := required("ListObjectsV2Input", param{"Bucket", in.Bucket != nil}); err != nil {
			return err
		}
		if in.Delimiter != nil {
			return s3Error("NotImplemented", "the sandbox does not list with a delimiter")
		}
		b, err := c.bucket(*in.Bucket)
		if err != nil {
			return err
		}
		max := int32(1000)
		if in.MaxKeys != nil && *in.MaxKeys >= 0 && *in.MaxKeys < max {
			max = *in.MaxKeys
		}
		prefix := aws.ToString(in.Prefix)
		keys := make([]string, 0, len(b.objects))
		for k := range b.objects {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		after := aws.ToString(in.StartAfter)
		if in.ContinuationToken != nil {
			k, derr := decodeMarker(*in.ContinuationToken)
			if derr != nil || k == "" {
				return s3Error("InvalidArgument", "The continuation token provided is incorrect")
			}
			after = k
		}
		from := sort.Search(len(keys), func(i int) bool { return keys[i] > after })
		to := min(from+int(max), len(keys))
		out = &s3.ListObjectsV2Output{
			Name: aws.String(b.Name), Prefix: in.Prefix, MaxKeys: aws.Int32(max), StartAfter: in.StartAfter,
			ContinuationToken: in.ContinuationToken, KeyCount: aws.Int32(int32(to - from)), IsTruncated: aws.Bool(to < len(keys)),
		}
		for _, k := range keys[from:to] {
			o := b.objects[k]
			out.Contents = append(out.Contents, s3types.Object{
				Key: aws.String(k), ETag: aws.String(o.ETag), Size: aws.Int64(int64(len(o.Body))),
				LastModified: aws.Time(o.Modified), StorageClass: s3types.ObjectStorageClassStandard,
			})
		}
		if to < len(keys) && to > from {
			out.NextContinuationToken = aws.String(encodeMarker(keys[to-1]))
		}
		return nil
	})
	return out, fail("S3", "ListObjectsV2", err)
}
