// Package api serves the AWS Step Functions JSON 1.0 protocol over HTTP, so
// that the aws-sdk-go-v2 sfn client, `aws stepfunctions --endpoint-url` and
// boto3 speak to keyflow unchanged. It is the HTTP face of a service.API:
// every operation of that interface is served by calling it.
//
// A request is `POST /` with `Content-Type: application/x-amz-json-1.0`
// and `X-Amz-Target: AWSStepFunctions.<Operation>`, signed with Signature
// Version 4. The handler
//
//   - refuses a request not signed with the configured credentials
//     (MissingAuthenticationTokenException, UnrecognizedClientException,
//     InvalidSignatureException, IncompleteSignatureException, all HTTP 400
//     as the service answers them); any region in the credential scope is
//     accepted, the service must be "states";
//   - decodes the body into the operation's sfn input shape (member names
//     exactly as on the wire; a body that does not fit is a
//     SerializationException, an unknown target an UnknownOperationException);
//   - writes the output with sfnjson, so the client decodes what it would
//     decode from AWS;
//   - writes an error the service returns that is a smithy.APIError (every
//     sfn typed error: *types.ExecutionAlreadyExists, *types.InvalidToken,
//     ...) as AWS does: HTTP 400, the code in X-Amzn-ErrorType and "__type",
//     "message" and the error's other members, so the client gets the same
//     typed error back. Any other error is a 500 InternalFailure whose
//     message says nothing of the cause, which goes to the logger.
//
// Bodies are never logged: they carry task tokens and execution data.
//
// Mounting it (what `keyflow serve` does):
//
//	h, err := api.New(api.Options{
//		Service:     svc, // a service.API: the local service, or any other
//		Credentials: aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
//		Logger:      logger,
//	})
//	if err != nil { ... }
//	srv := &http.Server{Addr: "127.0.0.1:8083", Handler: h}
//
// The handler serves every path, as the service's endpoint does; mount it
// at the root of its own listener.
//
// Clients: StartSyncExecution and TestState are sent by the SDK to the host
// "sync-" + endpoint host, which does not resolve for 127.0.0.1 or
// localhost. Give a client of a local endpoint the option
// api.WithoutHostPrefix (sfn.New(opts, api.WithoutHostPrefix)).
//
// api imports the service interface, sfnjson and the AWS SDK; never the
// engine's internals, the store, tasks, sandbox or cmd.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyflow/keyflow/engine/service"
	"github.com/keyflow/keyflow/engine/sfnjson"
)

// Options configure a Handler.
type Options struct {
	// Service answers every operation.
	Service service.API
	// Credentials are the only ones accepted: the access key id and secret
	// (and the session token, when set) the clients sign with.
	Credentials aws.Credentials
	// Logger receives one record per request (operation, status, request
	// id) and the causes of internal failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock a signature's date is checked against (within 15
	// minutes, as on AWS); nil is time.Now.
	Now func() time.Time
}

// MaxBodyBytes bounds a request body. The largest legal request is a
// 1 MiB definition or a 256 KiB input with its envelope; anything larger
// is refused before it is read whole.
const MaxBodyBytes = 4 << 20

const targetPrefix = "AWSStepFunctions."

// Handler is the http.Handler of the Step Functions API. It is safe for
// concurrent use if its service is.
type Handler struct {
	svc   service.API
	creds aws.Credentials
	log   *slog.Logger
	now   func() time.Time
	ops   map[string]operation
}

// operation decodes a body into its input shape and calls the service.
type operation func(ctx context.Context, body []byte) (any, error)

// New returns the handler of o.Service.
func New(o Options) (*Handler, error) {
	if o.Service == nil {
		return nil, errors.New("api: no service to serve")
	}
	if o.Credentials.AccessKeyID == "" || o.Credentials.SecretAccessKey == "" {
		return nil, errors.New("api: the credentials need an access key id and a secret access key")
	}
	h := &Handler{svc: o.Service, creds: o.Credentials, log: o.Logger, now: o.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.ops = operations(o.Service)
	return h, nil
}

// Operations lists the operations the handler serves, sorted.
func (h *Handler) Operations() []string {
	names := make([]string, 0, len(h.ops))
	for n := range h.ops {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func operations(s service.API) map[string]operation {
	return map[string]operation{
		"CreateStateMachine":               bind(s.CreateStateMachine),
		"UpdateStateMachine":               bind(s.UpdateStateMachine),
		"DescribeStateMachine":             bind(s.DescribeStateMachine),
		"DescribeStateMachineForExecution": bind(s.DescribeStateMachineForExecution),
		"ListStateMachines":                bind(s.ListStateMachines),
		"ListStateMachineVersions":         bind(s.ListStateMachineVersions),
		"DeleteStateMachine":               bind(s.DeleteStateMachine),
		"ValidateStateMachineDefinition":   bind(s.ValidateStateMachineDefinition),
		"StartExecution":                   bind(s.StartExecution),
		"StartSyncExecution":               bind(s.StartSyncExecution),
		"DescribeExecution":                bind(s.DescribeExecution),
		"ListExecutions":                   bind(s.ListExecutions),
		"GetExecutionHistory":              bind(s.GetExecutionHistory),
		"StopExecution":                    bind(s.StopExecution),
		"SendTaskSuccess":                  bind(s.SendTaskSuccess),
		"SendTaskFailure":                  bind(s.SendTaskFailure),
		"SendTaskHeartbeat":                bind(s.SendTaskHeartbeat),
		"TestState":                        bind(s.TestState),
	}
}

// errDecode marks a body that does not fit the operation's input shape.
type errDecode struct{ err error }

func (e errDecode) Error() string { return e.err.Error() }

func bind[I, O any](call func(context.Context, *I, ...func(*sfn.Options)) (*O, error)) operation {
	return func(ctx context.Context, body []byte) (any, error) {
		in := new(I)
		if err := sfnjson.Unmarshal(body, in); err != nil {
			return nil, errDecode{err}
		}
		out, err := call(ctx, in)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = new(O) // an empty output is still a JSON object on the wire
		}
		return out, nil
	}
}

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := requestID()
	w.Header().Set("X-Amzn-RequestId", id)
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	status, werr := h.serve(w, r, op)
	if werr != nil {
		writeError(w, werr)
		status = werr.status
	}
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"operation", op, "status", status, "requestId", id}
	if werr != nil {
		attrs = append(attrs, "errorType", werr.code)
		if werr.cause != nil {
			attrs = append(attrs, "error", werr.cause)
		}
	}
	h.log.Log(r.Context(), level, "api request", attrs...)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, op string) (int, *wireError) {
	if r.Method != http.MethodPost {
		return 0, &wireError{status: http.StatusMethodNotAllowed, code: "UnknownOperationException", message: "only POST is served"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return 0, &wireError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLargeException",
				message: fmt.Sprintf("the request body exceeds %d bytes", MaxBodyBytes)}
		}
		return 0, &wireError{status: http.StatusBadRequest, code: "SerializationException", message: "the request body could not be read"}
	}
	if werr := h.authenticate(r.Context(), r, body); werr != nil {
		return 0, werr
	}
	call, ok := h.ops[op]
	if !ok || !strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPrefix) {
		return 0, &wireError{status: http.StatusBadRequest, code: "UnknownOperationException",
			message: fmt.Sprintf("unknown operation %q", truncate(r.Header.Get("X-Amz-Target"), 80))}
	}
	out, err := call(r.Context(), body)
	if err != nil {
		var de errDecode
		if errors.As(err, &de) {
			return 0, &wireError{status: http.StatusBadRequest, code: "SerializationException", message: de.Error()}
		}
		return 0, serviceError(err)
	}
	b, err := sfnjson.Marshal(out)
	if err != nil {
		return 0, internalFailure(err)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return http.StatusOK, nil
}

const contentType = "application/x-amz-json-1.0"

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
