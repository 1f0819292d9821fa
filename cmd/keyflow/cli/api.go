package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/spf13/cobra"

	"github.com/keyflow/keyflow/engine/api"
	"github.com/keyflow/keyflow/engine/service"
)

// apiFlags choose which Step Functions a command speaks to: the local store
// (the default), a running `keyflow serve` (--endpoint), or AWS (--aws, with
// the SDK's usual profile, region and AWS_ENDPOINT_URL settings). Every
// command that reads or drives executions goes through service.API, so it is
// written once for all three.
type apiFlags struct {
	db       string
	endpoint string
	aws      bool
	region   string
	profile  string
}

func addAPIFlags(cmd *cobra.Command, f *apiFlags) {
	cmd.Flags().StringVar(&f.db, "db", defaultDB, "the local store")
	cmd.Flags().StringVar(&f.endpoint, "endpoint", "", "the URL of a running `keyflow serve` (e.g. http://127.0.0.1:8083)")
	cmd.Flags().BoolVar(&f.aws, "aws", false, "speak to AWS Step Functions through the default SDK configuration")
	cmd.Flags().StringVar(&f.region, "region", "", "the AWS region (--aws, --endpoint)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "the AWS shared-config profile (--aws, --endpoint)")
}

// client returns the API the flags name and a function that releases it.
func (f *apiFlags) client(ctx context.Context) (service.API, func(), error) {
	if f.aws && f.endpoint != "" {
		return nil, nil, invalid("--aws and --endpoint exclude each other")
	}
	if !f.aws && f.endpoint == "" {
		return localAPI(ctx, f.db)
	}
	var opts []func(*config.LoadOptions) error
	if f.region != "" {
		opts = append(opts, config.WithRegion(f.region))
	}
	if f.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(f.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	c := sfn.NewFromConfig(cfg, func(o *sfn.Options) {
		if f.endpoint != "" {
			o.BaseEndpoint = aws.String(f.endpoint)
			// StartSyncExecution's sync- host prefix does not resolve
			// for a local endpoint.
			api.WithoutHostPrefix(o)
		}
	})
	return c, func() {}, nil
}

// localAPI opens the local store to read it: state machines, executions
// and histories, also while `keyflow serve` runs it. What would run an
// execution (start, stop, an answer) is refused with a pointer to serve,
// the one process that runs the store's executions.
func localAPI(ctx context.Context, path string) (service.API, func(), error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("no local store at %s: run keyflow serve first, or use --endpoint or --aws", path)
	}
	db, err := openDB(path)
	if err != nil {
		return nil, nil, err
	}
	l, err := service.Open(ctx, service.Options{DB: db, ReadOnly: true})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return l, func() { l.Close(); db.Close() }, nil
}
