package sandbox

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestS3 walks the conditional-write protocol the audit record store relies
// on, one call per row, each row seeing what the rows before it left.
func TestS3(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.S3(acct)
	other := s.S3("222222222222")
	s3err := func(err error) string {
		if err == nil {
			return ""
		}
		var ae interface{ ErrorCode() string }
		require.ErrorAs(t, err, &ae)
		return ae.ErrorCode()
	}
	put := func(key, body string, opt func(*s3.PutObjectInput)) func() error {
		return func() error {
			in := &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String(key), Body: strings.NewReader(body)}
			if opt != nil {
				opt(in)
			}
			_, err := c.PutObject(ctx, in)
			return err
		}
	}
	get := func(key string) func() error {
		return func() error {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("audit"), Key: aws.String(key)})
			return err
		}
	}
	head := func(b, key string) func() error {
		return func() error {
			_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
			return err
		}
	}
	create := func(cl *S3, name string) func() error {
		return func() error {
			_, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
			return err
		}
	}
	etagOf := etag([]byte("v1"))
	steps := []struct {
		name string
		call func() error
		code string
	}{
		{"put before the bucket exists", put("k", "v1", nil), "NoSuchBucket"},
		{"head before the bucket exists", head("audit", "k"), "NotFound"},
		{"invalid bucket name", create(c, "Audit_Bucket"), "InvalidBucketName"},
		{"create bucket", create(c, "audit"), ""},
		{"create again in us-east-1 is a success", create(c, "audit"), ""},
		{"another account cannot take the name", create(other, "audit"), "BucketAlreadyExists"},
		{"another account cannot write to it", func() error {
			_, err := other.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String("k")})
			return err
		}, "AccessDenied"},
		{"get missing key", get("k"), "NoSuchKey"},
		{"head missing key", head("audit", "k"), "NotFound"},
		{"If-Match on a missing key", put("k", "v1", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(etagOf) }), "NoSuchKey"},
		{"If-None-Match * creates", put("k", "v1", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }), ""},
		{"If-None-Match * refuses to replace", put("k", "v2", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }), "PreconditionFailed"},
		{"If-Match with another ETag", put("k", "v2", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(`"0123"`) }), "PreconditionFailed"},
		{"If-Match with the ETag replaces", put("k", "v2", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(etagOf) }), ""},
		{"the old ETag no longer matches", put("k", "v3", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(etagOf) }), "PreconditionFailed"},
		{"unconditional put replaces", put("k", "v3", nil), ""},
		{"empty key", put("", "x", nil), "InvalidArgument"},
		{"key too long", put(strings.Repeat("k", 1025), "x", nil), "KeyTooLongError"},
		{"get", get("k"), ""},
		{"head", head("audit", "k"), ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			assert.Equal(t, st.code, s3err(st.call()))
		})
	}

	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("audit"), Key: aws.String("k")})
	require.NoError(t, err)
	b, err := io.ReadAll(got.Body)
	require.NoError(t, err)
	assert.Equal(t, "v3", string(b), "the refused writes changed nothing")
	assert.Equal(t, etag([]byte("v3")), aws.ToString(got.ETag))
	assert.Regexp(t, `^"[0-9a-f]{32}"$`, aws.ToString(got.ETag))
	assert.Equal(t, int64(2), aws.ToInt64(got.ContentLength))
	assert.Equal(t, t0, aws.ToTime(got.LastModified))
}

func TestS3ListObjectsV2(t *testing.T) {
	ctx := context.Background()
	s, _ := newSandbox(t)
	c := s.S3(acct)
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("audit")})
	require.NoError(t, err)
	for _, k := range []string{"audit/b.json", "audit/HEAD", "audit/a.json", "other/x", "audit/c.json"} {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String(k), Body: strings.NewReader(k)})
		require.NoError(t, err)
	}
	var keys []string
	var token *string
	pages := 0
	for {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("audit"), Prefix: aws.String("audit/"), MaxKeys: aws.Int32(2), ContinuationToken: token})
		require.NoError(t, err)
		pages++
		assert.Equal(t, int32(len(out.Contents)), aws.ToInt32(out.KeyCount))
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
			assert.Equal(t, int64(len(aws.ToString(o.Key))), aws.ToInt64(o.Size))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		token = out.NextContinuationToken
	}
	assert.Equal(t, []string{"audit/HEAD", "audit/a.json", "audit/b.json", "audit/c.json"}, keys, "binary order: upper case first")
	assert.Equal(t, 2, pages)
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("audit"), ContinuationToken: aws.String("!!")})
	requireCode(t, err, "InvalidArgument")
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nope")})
	var nb *s3types.NoSuchBucket
	require.ErrorAs(t, err, &nb)
}

// TestS3Persists: buckets and objects survive a restart, and a conditional
// write after it still sees the stored ETag.
func TestS3Persists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyflow.db")
	clk := &fakeClock{t: t0}
	s, err := New(Options{Now: clk.Now, DB: openDB(t, path)})
	require.NoError(t, err)
	c := s.S3(acct)
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("audit")})
	require.NoError(t, err)
	p, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String("audit/HEAD"), Body: strings.NewReader(`{"hash":"ab"}`), ContentType: aws.String("application/json")})
	require.NoError(t, err)

	s2, err := New(Options{Now: clk.Now, DB: openDB(t, path)})
	require.NoError(t, err)
	c2 := s2.S3(acct)
	h, err := c2.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("audit"), Key: aws.String("audit/HEAD")})
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(p.ETag), aws.ToString(h.ETag))
	assert.Equal(t, "application/json", aws.ToString(h.ContentType))
	_, err = c2.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String("audit/HEAD"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
	requireCode(t, err, "PreconditionFailed")
	_, err = s2.S3("222222222222").CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("audit")})
	requireCode(t, err, "BucketAlreadyExists")
	_, err = c2.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String("audit/HEAD"), Body: strings.NewReader("y"), IfMatch: h.ETag})
	require.NoError(t, err)

	s3again, err := New(Options{Now: clk.Now, DB: openDB(t, path)})
	require.NoError(t, err)
	g, err := s3again.S3(acct).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("audit"), Key: aws.String("audit/HEAD")})
	require.NoError(t, err)
	b, _ := io.ReadAll(g.Body)
	assert.Equal(t, "y", string(b))
}
