package api

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// WithoutHostPrefix is an sfn client option for a client of a local
// endpoint (`keyflow serve`, an httptest server). The SDK sends
// StartSyncExecution and TestState to "sync-" + the endpoint's host, as
// AWS serves them from sync-states.<region>.amazonaws.com; "sync-127.0.0.1"
// does not resolve, so the prefix is turned off for every operation of the
// client. It changes nothing else.
//
//	client := sfn.New(sfn.Options{BaseEndpoint: aws.String(url), ...}, api.WithoutHostPrefix)
func WithoutHostPrefix(o *sfn.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("keyflowWithoutHostPrefix",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(smithyhttp.DisableEndpointHostPrefix(ctx, true), in)
			}), middleware.Before)
	})
}
