package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	signingService = "states"
	amzDateFormat  = "20060102T150405Z"
	// maxSkew is how far a request's X-Amz-Date may be from the server's
	// clock; AWS refuses a signature older or newer than 15 minutes.
	maxSkew = 15 * time.Minute
)

// authenticate checks that the request is signed with Signature Version 4
// by the configured credentials. The signature is recomputed over the same
// canonical request (method, path, query, the headers the client signed,
// the body's SHA-256) with the SDK's signer and compared in constant time,
// so the secret never leaves the process and a timing probe learns nothing.
//
// The signer signs every header it is given except a fixed few
// (User-Agent, X-Amzn-Trace-Id, ...), so it is handed exactly the headers
// the client listed in SignedHeaders; a client that signed one of those few
// is refused, as its signature cannot be reproduced.
func (h *Handler) authenticate(ctx context.Context, r *http.Request, body []byte) *wireError {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return &wireError{status: http.StatusBadRequest, code: "MissingAuthenticationTokenException", message: "Missing Authentication Token"}
	}
	a, werr := parseAuthorization(authz)
	if werr != nil {
		return werr
	}
	if subtle.ConstantTimeCompare([]byte(a.accessKeyID), []byte(h.creds.AccessKeyID)) != 1 {
		return unrecognizedClient()
	}
	if tok := r.Header.Get("X-Amz-Security-Token"); subtle.ConstantTimeCompare([]byte(tok), []byte(h.creds.SessionToken)) != 1 {
		return unrecognizedClient()
	}
	if a.service != signingService {
		return invalidSignature("Credential should be scoped to correct service: '" + signingService + "'.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return &wireError{status: http.StatusBadRequest, code: "IncompleteSignatureException",
			message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}
	}
	signedAt, err := time.Parse(amzDateFormat, amzDate)
	if err != nil || !strings.HasPrefix(amzDate, a.date) {
		return invalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.")
	}
	if now := h.now(); signedAt.Before(now.Add(-maxSkew)) || signedAt.After(now.Add(maxSkew)) {
		return invalidSignature("Signature expired: " + amzDate + " is now earlier or later than 15 minutes from " + now.UTC().Format(amzDateFormat) + ".")
	}

	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if declared := r.Header.Get("X-Amz-Content-Sha256"); declared != "" && declared != payloadHash {
		return invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}

	// The request as the client signed it: only the signed headers.
	re, err := http.NewRequestWithContext(ctx, r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return invalidSignature(signatureMismatch)
	}
	re.Host = r.Host
	for _, name := range a.signedHeaders {
		switch name {
		case "host":
			continue
		case "content-length":
			re.ContentLength = int64(len(body))
			continue
		}
		vals := r.Header.Values(name)
		if len(vals) == 0 {
			return invalidSignature(signatureMismatch)
		}
		re.Header[textproto.CanonicalMIMEHeaderKey(name)] = vals
	}
	creds := aws.Credentials{AccessKeyID: h.creds.AccessKeyID, SecretAccessKey: h.creds.SecretAccessKey, SessionToken: h.creds.SessionToken}
	if err := v4.NewSigner().SignHTTP(ctx, creds, re, payloadHash, signingService, a.region, signedAt); err != nil {
		return invalidSignature(signatureMismatch)
	}
	want, werr := parseAuthorization(re.Header.Get("Authorization"))
	if werr != nil {
		return invalidSignature(signatureMismatch)
	}
	sameHeaders := strings.Join(want.signedHeaders, ";") == strings.Join(a.signedHeaders, ";")
	sameSig := subtle.ConstantTimeCompare([]byte(want.signature), []byte(a.signature)) == 1
	if !sameHeaders || !sameSig {
		return invalidSignature(signatureMismatch)
	}
	return nil
}

const signatureMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// authorization is the parsed Authorization header of SigV4.
type authorization struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
	signature                          string
}

func parseAuthorization(v string) (authorization, *wireError) {
	var a authorization
	rest, ok := strings.CutPrefix(v, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, incompleteSignature("Authorization header requires the AWS4-HMAC-SHA256 algorithm.")
	}
	var credential, signed string
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = val
		case "SignedHeaders":
			signed = val
		case "Signature":
			a.signature = val
		}
	}
	if credential == "" || signed == "" || a.signature == "" {
		return a, incompleteSignature("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.")
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" {
		return a, incompleteSignature("Credential should be 'ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request'.")
	}
	a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	a.signedHeaders = strings.Split(signed, ";")
	return a, nil
}

func unrecognizedClient() *wireError {
	return &wireError{status: http.StatusBadRequest, code: "UnrecognizedClientException", message: "The security token included in the request is invalid."}
}

func invalidSignature(msg string) *wireError {
	return &wireError{status: http.StatusBadRequest, code: "InvalidSignatureException", message: msg}
}

func incompleteSignature(msg string) *wireError {
	return &wireError{status: http.StatusBadRequest, code: "IncompleteSignatureException", message: msg}
}
