package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/google/uuid"

	"github.com/keyflow/keyflow/engine"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/data"
)

// Options configure the local service.
type Options struct {
	// DB is the SQLite store (WAL): the service's tables live beside the
	// sandbox's.
	DB *sql.DB
	// Engine configures the engine that runs the executions: handlers,
	// clock, region, account. Its Journal and TokenSecret are the
	// service's.
	Engine engine.Options
	// ReadOnly opens the store to read it (state machines, executions,
	// histories) while another process runs it: nothing is compiled or
	// resumed, and what would run an execution is refused.
	ReadOnly bool
	// UnloadAfter is how long (real time) an execution may have nothing
	// to do before it is unloaded from memory and kept only in the store
	// (see dormant.go); zero is DefaultUnloadAfter, negative keeps every
	// execution in memory. On a virtual clock nothing is unloaded.
	UnloadAfter time.Duration
}

// Local is the Step Functions API on the engine and the durable store.
type Local struct {
	store  *store
	engine *engine.Engine
	log    *slog.Logger
	ctx    context.Context // executions run under it; Close ends them
	cancel context.CancelFunc

	mu       sync.Mutex
	machines map[string]*engine.Machine // "arn#revision"
	revOf    map[*engine.Machine]machineRev
	live     map[string]*engine.Execution
	liveCond *sync.Cond // on mu: an execution left live
	pins     map[string]int
	wg       sync.WaitGroup
	readOnly bool
	// engineOpts are the caller's engine options, which TestState's
	// throwaway engines start from.
	engineOpts engine.Options

	clock       engine.Clock
	unloadAfter time.Duration
	// resumeMu makes resumes one at a time, so that no execution runs
	// twice in the process.
	resumeMu sync.Mutex
	nextWake time.Time // under mu: when the wake loop looks next
	kick     chan struct{}
	wakeCtx  context.Context
	wakeStop context.CancelFunc
	wakeDone chan struct{}
}

type machineRev struct {
	arn string
	rev int64
}

var _ API = (*Local)(nil)

// Open opens the service on its store and resumes every execution that
// was running when the store was last closed, or when its process died.
func Open(ctx context.Context, o Options) (*Local, error) {
	st, err := openStore(ctx, o.DB)
	if err != nil {
		return nil, err
	}
	secret, err := st.tokenSecret(ctx)
	if err != nil {
		return nil, fmt.Errorf("service: token secret: %w", err)
	}
	l := &Local{store: st, machines: map[string]*engine.Machine{}, revOf: map[*engine.Machine]machineRev{}, live: map[string]*engine.Execution{},
		pins: map[string]int{}, kick: make(chan struct{}, 1), wakeDone: make(chan struct{}), unloadAfter: unloadAfter(o)}
	l.liveCond = sync.NewCond(&l.mu)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wakeCtx, l.wakeStop = context.WithCancel(context.Background())
	eo := o.Engine
	l.engineOpts = eo
	eo.Journal = journal{s: l, rev: l.revisionOf}
	eo.TokenSecret = secret
	eo.Unload = l.shouldUnload
	onStart := eo.OnExecutionStart
	eo.OnExecutionStart = func(x *engine.Execution) {
		l.track(x)
		if onStart != nil {
			onStart(x)
		}
	}
	l.engine = engine.New(eo)
	l.clock = l.engine.Clock()
	if _, virtual := l.clock.(*engine.VirtualClock); virtual {
		l.unloadAfter = -1
	}
	l.log = eo.Logger
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if o.ReadOnly {
		l.readOnly = true
		close(l.wakeDone)
		return l, nil
	}
	if err := l.loadMachines(ctx); err != nil {
		return nil, err
	}
	if err := l.resumeAll(ctx); err != nil {
		return nil, err
	}
	go l.wakeLoop()
	return l, nil
}

// errReadOnly is what a read-only service answers to what would run.
func errReadOnly(op string) error {
	return validation(op + " needs the process that runs the store's executions: start keyflow serve and use --endpoint")
}

// Engine is the engine the service runs executions on.
func (l *Local) Engine() *engine.Engine { return l.engine }

// Close lets go of the executions running in this process: they stay
// RUNNING in the store and resume at the next Open.
func (l *Local) Close() {
	l.wakeStop()
	l.mu.Lock()
	l.liveCond.Broadcast()
	l.mu.Unlock()
	<-l.wakeDone
	l.mu.Lock()
	for _, x := range l.live {
		x.Detach()
	}
	l.mu.Unlock()
	l.wg.Wait()
	l.cancel()
}

func (l *Local) revisionOf(m *engine.Machine) (string, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.revOf[m]
	return r.arn, r.rev
}

// compile returns the machine of one revision, compiling it once; the
// latest revision is the one startExecution tasks find.
func (l *Local) compile(arn, name string, rev int64, def string, latest bool) (*engine.Machine, error) {
	key := arn + "#" + strconv.FormatInt(rev, 10)
	l.mu.Lock()
	m, ok := l.machines[key]
	l.mu.Unlock()
	if ok {
		return m, nil
	}
	d, err := states.Parse([]byte(def))
	if err != nil {
		return nil, invalidDefinition(err)
	}
	if latest {
		m, err = l.engine.Compile(d, name)
	} else {
		m, err = l.engine.CompileRevision(d, name)
	}
	if err != nil {
		return nil, invalidDefinition(err)
	}
	l.mu.Lock()
	l.machines[key] = m
	l.revOf[m] = machineRev{arn, rev}
	l.mu.Unlock()
	return m, nil
}

func (l *Local) loadMachines(ctx context.Context) error {
	rows, err := l.store.db.QueryContext(ctx, `SELECT arn FROM sfn_state_machines WHERE deleted = 0`)
	if err != nil {
		return err
	}
	var arns []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return err
		}
		arns = append(arns, a)
	}
	rows.Close()
	for _, a := range arns {
		r, err := l.store.machine(ctx, a)
		if err != nil {
			return err
		}
		if _, err := l.compile(r.arn, r.name, r.revision, r.definition, true); err != nil {
			return fmt.Errorf("service: state machine %s: %w", r.name, err)
		}
	}
	return nil
}

// machineFor is the compiled revision an execution runs on.
func (l *Local) machineFor(ctx context.Context, smArn string, rev int64) (*engine.Machine, error) {
	key := smArn + "#" + strconv.FormatInt(rev, 10)
	l.mu.Lock()
	m, ok := l.machines[key]
	l.mu.Unlock()
	if ok {
		return m, nil
	}
	def, err := l.store.revision(ctx, smArn, rev)
	if err != nil {
		return nil, fmt.Errorf("service: revision %d of %s: %w", rev, smArn, err)
	}
	name := smArn[strings.LastIndex(smArn, ":")+1:]
	return l.compile(smArn, name, rev, def, false)
}

// resumeAll resumes the executions that were doing something when the
// store was last closed; the parked ones are dormant, and the wake loop
// resumes them when they are due. When nothing may be unloaded, every
// running execution is resumed.
func (l *Local) resumeAll(ctx context.Context) error {
	q := `SELECT ` + execCols + ` FROM sfn_executions WHERE status = 'RUNNING' AND parked = 0 ORDER BY start_ms`
	if l.unloadAfter < 0 {
		q = `SELECT ` + execCols + ` FROM sfn_executions WHERE status = 'RUNNING' ORDER BY start_ms`
	}
	rows, err := l.store.db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	var running []*execRow
	for rows.Next() {
		r, err := scanExec(rows)
		if err != nil {
			rows.Close()
			return err
		}
		running = append(running, r)
	}
	rows.Close()
	for _, r := range running {
		if _, err := l.takeBack(ctx, r.arn); err != nil {
			l.log.Error("resume failed", "arn", r.arn, "error", err.Error())
		}
	}
	return nil
}

func (l *Local) startLive(m *engine.Machine, name string, input []byte) (*engine.Execution, error) {
	return m.Start(l.ctx, name, input)
}

func (l *Local) track(x *engine.Execution) {
	l.mu.Lock()
	l.live[x.Arn()] = x
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		<-x.Done()
		l.forget(x)
	}()
}

func (l *Local) liveExecution(arn string) *engine.Execution {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live[arn]
}

// ---- state machines ----

func (l *Local) smArn(name string) string {
	return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", l.region(), l.account(), name)
}

func (l *Local) region() string  { return l.engine.Region() }
func (l *Local) account() string { return l.engine.AccountID() }

func (l *Local) CreateStateMachine(ctx context.Context, in *sfn.CreateStateMachineInput, _ ...func(*sfn.Options)) (*sfn.CreateStateMachineOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("CreateStateMachine")
	}
	if in.Name == nil || in.Definition == nil || in.RoleArn == nil {
		return nil, validation("name, definition and roleArn are required")
	}
	if err := engine.CheckName(*in.Name); err != nil {
		return nil, apiError(err)
	}
	typ := string(in.Type)
	if typ == "" {
		typ = string(types.StateMachineTypeStandard)
	}
	arn := l.smArn(*in.Name)
	if prev, err := l.store.machine(ctx, arn); err == nil {
		if prev.definition == *in.Definition && prev.role == *in.RoleArn && prev.typ == typ {
			return &sfn.CreateStateMachineOutput{StateMachineArn: &arn, CreationDate: &prev.created}, nil
		}
		return nil, &types.StateMachineAlreadyExists{Message: ptr("State Machine Already Exists: '" + arn + "'")}
	}
	if _, err := l.compile(arn, *in.Name, 1, *in.Definition, true); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	tx, err := l.store.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO sfn_state_machines (arn, name, type, role_arn, created_ms, updated_ms, revision, deleted)
		VALUES (?, ?, ?, ?, ?, ?, 1, 0)`, arn, *in.Name, typ, *in.RoleArn, ms(now), ms(now)); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO sfn_revisions (arn, revision, definition, created_ms) VALUES (?, 1, ?, ?)`, arn, *in.Definition, ms(now)); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return &sfn.CreateStateMachineOutput{StateMachineArn: &arn, CreationDate: &now}, nil
}

func (l *Local) UpdateStateMachine(ctx context.Context, in *sfn.UpdateStateMachineInput, _ ...func(*sfn.Options)) (*sfn.UpdateStateMachineOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("UpdateStateMachine")
	}
	if in.StateMachineArn == nil {
		return nil, validation("stateMachineArn is required")
	}
	cur, err := l.store.machine(ctx, *in.StateMachineArn)
	if err != nil {
		return nil, err
	}
	def, role := cur.definition, cur.role
	if in.Definition != nil {
		def = *in.Definition
	}
	if in.RoleArn != nil {
		role = *in.RoleArn
	}
	if in.Definition == nil && in.RoleArn == nil {
		return nil, &types.MissingRequiredParameter{Message: ptr("Either the definition or the roleArn must be specified")}
	}
	rev := cur.revision + 1
	if _, err := l.compile(cur.arn, cur.name, rev, def, true); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	tx, err := l.store.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO sfn_revisions (arn, revision, definition, created_ms) VALUES (?, ?, ?, ?)`, cur.arn, rev, def, ms(now)); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sfn_state_machines SET revision = ?, role_arn = ?, updated_ms = ? WHERE arn = ?`, rev, role, ms(now), cur.arn); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return &sfn.UpdateStateMachineOutput{UpdateDate: &now, RevisionId: ptr(strconv.FormatInt(rev, 10))}, nil
}

func (l *Local) DescribeStateMachine(ctx context.Context, in *sfn.DescribeStateMachineInput, _ ...func(*sfn.Options)) (*sfn.DescribeStateMachineOutput, error) {
	if in.StateMachineArn == nil {
		return nil, validation("stateMachineArn is required")
	}
	r, err := l.store.machine(ctx, *in.StateMachineArn)
	if err != nil {
		return nil, err
	}
	return &sfn.DescribeStateMachineOutput{
		StateMachineArn: &r.arn, Name: &r.name, Definition: &r.definition, RoleArn: &r.role,
		Type: types.StateMachineType(r.typ), Status: types.StateMachineStatusActive, CreationDate: &r.created,
		RevisionId: ptr(strconv.FormatInt(r.revision, 10)),
	}, nil
}

func (l *Local) DescribeStateMachineForExecution(ctx context.Context, in *sfn.DescribeStateMachineForExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeStateMachineForExecutionOutput, error) {
	if in.ExecutionArn == nil {
		return nil, validation("executionArn is required")
	}
	x, err := l.store.execution(ctx, *in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	def, err := l.store.revision(ctx, x.smArn, x.revision)
	if err != nil {
		return nil, err
	}
	var role string
	var updated int64
	_ = l.store.db.QueryRowContext(ctx, `SELECT role_arn, updated_ms FROM sfn_state_machines WHERE arn = ?`, x.smArn).Scan(&role, &updated)
	name := x.smArn[strings.LastIndex(x.smArn, ":")+1:]
	up := fromMS(updated)
	return &sfn.DescribeStateMachineForExecutionOutput{StateMachineArn: &x.smArn, Name: &name, Definition: &def, RoleArn: &role,
		UpdateDate: &up, RevisionId: ptr(strconv.FormatInt(x.revision, 10))}, nil
}

func (l *Local) ListStateMachines(ctx context.Context, in *sfn.ListStateMachinesInput, _ ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error) {
	limit, after, err := page(in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	rows, err := l.store.db.QueryContext(ctx, `SELECT arn, name, type, created_ms FROM sfn_state_machines WHERE deleted = 0 AND name > ? ORDER BY name LIMIT ?`, after, limit+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &sfn.ListStateMachinesOutput{StateMachines: []types.StateMachineListItem{}}
	for rows.Next() {
		var it types.StateMachineListItem
		var arn, name, typ string
		var c int64
		if err := rows.Scan(&arn, &name, &typ, &c); err != nil {
			return nil, err
		}
		if len(out.StateMachines) == limit {
			out.NextToken = ptr(encodeToken(*out.StateMachines[limit-1].Name))
			break
		}
		created := fromMS(c)
		it.StateMachineArn, it.Name, it.Type, it.CreationDate = &arn, &name, types.StateMachineType(typ), &created
		out.StateMachines = append(out.StateMachines, it)
	}
	return out, rows.Err()
}

func (l *Local) ListStateMachineVersions(ctx context.Context, in *sfn.ListStateMachineVersionsInput, _ ...func(*sfn.Options)) (*sfn.ListStateMachineVersionsOutput, error) {
	if in.StateMachineArn == nil {
		return nil, validation("stateMachineArn is required")
	}
	if _, err := l.store.machine(ctx, *in.StateMachineArn); err != nil {
		return nil, err
	}
	// Revisions are kept, but none is published as a version.
	return &sfn.ListStateMachineVersionsOutput{StateMachineVersions: []types.StateMachineVersionListItem{}}, nil
}

func (l *Local) DeleteStateMachine(ctx context.Context, in *sfn.DeleteStateMachineInput, _ ...func(*sfn.Options)) (*sfn.DeleteStateMachineOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("DeleteStateMachine")
	}
	if in.StateMachineArn == nil {
		return nil, validation("stateMachineArn is required")
	}
	// As on AWS, deleting an unknown state machine is not an error, and
	// running executions carry on.
	if _, err := l.store.db.ExecContext(ctx, `UPDATE sfn_state_machines SET deleted = 1 WHERE arn = ?`, *in.StateMachineArn); err != nil {
		return nil, err
	}
	return &sfn.DeleteStateMachineOutput{}, nil
}

func (l *Local) ValidateStateMachineDefinition(_ context.Context, in *sfn.ValidateStateMachineDefinitionInput, _ ...func(*sfn.Options)) (*sfn.ValidateStateMachineDefinitionOutput, error) {
	if in.Definition == nil {
		return nil, validation("definition is required")
	}
	out := &sfn.ValidateStateMachineDefinitionOutput{Result: types.ValidateStateMachineDefinitionResultCodeOk, Diagnostics: []types.ValidateStateMachineDefinitionDiagnostic{}}
	if _, err := states.Parse([]byte(*in.Definition)); err != nil {
		out.Result = types.ValidateStateMachineDefinitionResultCodeFail
		var ve *states.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				out.Diagnostics = append(out.Diagnostics, types.ValidateStateMachineDefinitionDiagnostic{
					Severity: types.ValidateStateMachineDefinitionSeverityError, Code: ptr("SCHEMA_VALIDATION_FAILED"),
					Message: ptr(p.Message), Location: ptr(p.Pointer)})
			}
		} else {
			out.Diagnostics = append(out.Diagnostics, types.ValidateStateMachineDefinitionDiagnostic{
				Severity: types.ValidateStateMachineDefinitionSeverityError, Code: ptr("INVALID_JSON_DESCRIPTION"), Message: ptr(err.Error())})
		}
	}
	return out, nil
}

// ---- executions ----

func (l *Local) latest(ctx context.Context, smArn string) (*engine.Machine, *machineRow, error) {
	r, err := l.store.machine(ctx, smArn)
	if err != nil {
		return nil, nil, err
	}
	m, err := l.compile(r.arn, r.name, r.revision, r.definition, true)
	return m, r, err
}

func (l *Local) StartExecution(ctx context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("StartExecution")
	}
	if in.StateMachineArn == nil {
		return nil, validation("stateMachineArn is required")
	}
	m, _, err := l.latest(ctx, *in.StateMachineArn)
	if err != nil {
		return nil, err
	}
	name := deref(in.Name)
	if name == "" {
		name = uuid.NewString()
	}
	input := []byte(deref(in.Input))
	if in.Input == nil {
		input = []byte("{}")
	}
	x, err := l.startLive(m, name, input)
	var running *engine.AlreadyRunning
	if errors.As(err, &running) {
		return &sfn.StartExecutionOutput{ExecutionArn: &running.ExecutionArn, StartDate: &running.StartDate}, nil
	}
	if err != nil {
		return nil, apiError(err)
	}
	start := x.StartDate()
	arn := x.Arn()
	return &sfn.StartExecutionOutput{ExecutionArn: &arn, StartDate: &start}, nil
}

func (l *Local) StartSyncExecution(ctx context.Context, in *sfn.StartSyncExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartSyncExecutionOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("StartSyncExecution")
	}
	if in.StateMachineArn == nil {
		return nil, validation("stateMachineArn is required")
	}
	m, r, err := l.latest(ctx, *in.StateMachineArn)
	if err != nil {
		return nil, err
	}
	if r.typ != string(types.StateMachineTypeExpress) {
		return nil, &types.StateMachineTypeNotSupported{Message: ptr("This operation is only supported by EXPRESS state machines")}
	}
	name := deref(in.Name)
	if name == "" {
		name = uuid.NewString()
	}
	input := deref(in.Input)
	if in.Input == nil {
		input = "{}"
	}
	// The caller waits for the end: the execution stays in memory.
	defer l.pin(m.ExecutionArn(name))()
	x, err := l.startLive(m, name, []byte(input))
	if err != nil {
		return nil, apiError(err)
	}
	res := x.Wait(ctx)
	if res == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("service: %s stopped running in this process before its end", x.Arn())
	}
	arn, start, stop := x.Arn(), res.StartDate, res.StopDate
	out := &sfn.StartSyncExecutionOutput{ExecutionArn: &arn, StateMachineArn: ptr(m.Arn()), Name: &name, StartDate: &start, StopDate: &stop,
		Status: types.SyncExecutionStatus(res.Status), Input: &input}
	if res.Status == engine.StatusSucceeded {
		b, _ := marshalValue(res.Output)
		out.Output = ptr(string(b))
	} else {
		out.Error, out.Cause = nilIfEmptyPtr(res.Error), nilIfEmptyPtr(res.Cause)
	}
	return out, nil
}

func (l *Local) DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	if in.ExecutionArn == nil {
		return nil, validation("executionArn is required")
	}
	r, err := l.store.execution(ctx, *in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	out := &sfn.DescribeExecutionOutput{ExecutionArn: &r.arn, StateMachineArn: &r.smArn, Name: &r.name,
		Status: types.ExecutionStatus(r.status), StartDate: &r.start, StopDate: r.stop, Input: &r.input,
		Output: r.output, Error: r.errName, Cause: r.cause, RedriveCount: ptr(int32(0)),
		InputDetails: &types.CloudWatchEventsExecutionDataDetails{Included: true}}
	if r.output != nil {
		out.OutputDetails = &types.CloudWatchEventsExecutionDataDetails{Included: true}
	}
	return out, nil
}

func (l *Local) ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, _ ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error) {
	if in.StateMachineArn == nil {
		return nil, validation("stateMachineArn is required")
	}
	var smName string
	if err := l.store.db.QueryRowContext(ctx, `SELECT name FROM sfn_state_machines WHERE arn = ?`, *in.StateMachineArn).Scan(&smName); err != nil {
		return nil, &types.StateMachineDoesNotExist{Message: ptr("State Machine Does Not Exist: '" + *in.StateMachineArn + "'")}
	}
	limit, after, err := page(in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	// Newest first, as AWS lists them: the token is the last row's
	// (start, arn).
	q := `SELECT ` + execCols + ` FROM sfn_executions WHERE sm_arn = ?`
	args := []any{*in.StateMachineArn}
	if in.StatusFilter != "" {
		q += ` AND status = ?`
		args = append(args, string(in.StatusFilter))
	}
	if after != "" {
		i := strings.IndexByte(after, '|')
		start, perr := strconv.ParseInt(after[:max(i, 0)], 10, 64)
		if i < 0 || perr != nil {
			return nil, &types.InvalidToken{Message: ptr("Invalid Token: '" + deref(in.NextToken) + "'")}
		}
		q += ` AND (start_ms < ? OR (start_ms = ? AND arn < ?))`
		args = append(args, start, start, after[i+1:])
	}
	q += ` ORDER BY start_ms DESC, arn DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := l.store.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &sfn.ListExecutionsOutput{Executions: []types.ExecutionListItem{}}
	var lastKey string
	for rows.Next() {
		r, err := scanExec(rows)
		if err != nil {
			return nil, err
		}
		if len(out.Executions) == limit {
			out.NextToken = ptr(encodeToken(lastKey))
			break
		}
		lastKey = strconv.FormatInt(ms(r.start), 10) + "|" + r.arn
		out.Executions = append(out.Executions, types.ExecutionListItem{ExecutionArn: ptr(r.arn), StateMachineArn: ptr(r.smArn),
			Name: ptr(r.name), Status: types.ExecutionStatus(r.status), StartDate: ptr(r.start), StopDate: r.stop})
	}
	return out, rows.Err()
}

func (l *Local) GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, _ ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	if in.ExecutionArn == nil {
		return nil, validation("executionArn is required")
	}
	if _, err := l.store.execution(ctx, *in.ExecutionArn); err != nil {
		return nil, err
	}
	limit, after, err := page(in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	var from int64
	if after != "" {
		if from, err = strconv.ParseInt(after, 10, 64); err != nil {
			return nil, &types.InvalidToken{Message: ptr("Invalid Token: '" + deref(in.NextToken) + "'")}
		}
	}
	q := `SELECT id, body FROM sfn_events WHERE exec_arn = ? AND id > ? ORDER BY id LIMIT ?`
	if in.ReverseOrder {
		q = `SELECT id, body FROM sfn_events WHERE exec_arn = ? AND id < ? ORDER BY id DESC LIMIT ?`
		if after == "" {
			from = 1 << 62
		}
	}
	rows, err := l.store.db.QueryContext(ctx, q, *in.ExecutionArn, from, limit+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &sfn.GetExecutionHistoryOutput{Events: []types.HistoryEvent{}}
	include := in.IncludeExecutionData == nil || *in.IncludeExecutionData
	var lastID int64
	for rows.Next() {
		var id int64
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			return nil, err
		}
		if len(out.Events) == limit {
			out.NextToken = ptr(encodeToken(strconv.FormatInt(lastID, 10)))
			break
		}
		e, err := decodeEvent(body)
		if err != nil {
			return nil, err
		}
		if !include {
			stripData(&e)
		}
		out.Events = append(out.Events, e)
		lastID = id
	}
	return out, rows.Err()
}

func (l *Local) StopExecution(ctx context.Context, in *sfn.StopExecutionInput, _ ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("StopExecution")
	}
	if in.ExecutionArn == nil {
		return nil, validation("executionArn is required")
	}
	r, err := l.store.execution(ctx, *in.ExecutionArn)
	if err != nil {
		return nil, err
	}
	if r.status != engine.StatusRunning {
		return nil, validation("Execution Does Not Exist or is not running: '" + r.arn + "'")
	}
	defer l.pin(r.arn)()
	x, err := l.ensureLive(ctx, r.arn)
	if err != nil {
		return nil, err
	}
	if x == nil {
		return nil, validation("Execution Does Not Exist or is not running: '" + r.arn + "'")
	}
	x.Stop(deref(in.Error), deref(in.Cause))
	res := x.Wait(ctx)
	if res == nil {
		return nil, ctx.Err()
	}
	stop := res.StopDate
	return &sfn.StopExecutionOutput{StopDate: &stop}, nil
}

// withToken answers a token, resuming its execution first when it is
// dormant (or no process ran it since a restart).
func (l *Local) withToken(ctx context.Context, token *string, fn func(string) error) error {
	if token == nil || *token == "" {
		return validation("taskToken is required")
	}
	err := fn(*token)
	if err == nil || !errors.Is(err, engine.ErrTaskDoesNotExist) {
		return apiError(err)
	}
	var arn string
	if qerr := l.store.db.QueryRowContext(ctx, `SELECT exec_arn FROM sfn_tokens WHERE token = ?`, *token).Scan(&arn); qerr != nil {
		return apiError(err)
	}
	// Pinned, it stays in memory until the answer is in; the first try
	// may have met it while it was letting go.
	defer l.pin(arn)()
	for range 2 {
		x, lerr := l.ensureLive(ctx, arn)
		if lerr != nil {
			return lerr
		}
		if x == nil {
			break
		}
		if err = fn(*token); err == nil || !errors.Is(err, engine.ErrTaskDoesNotExist) {
			break
		}
	}
	return apiError(err)
}

func (l *Local) SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, _ ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("SendTaskSuccess")
	}
	if in.Output == nil {
		return nil, validation("output is required")
	}
	err := l.withToken(ctx, in.TaskToken, func(tok string) error { return l.engine.SendTaskSuccess(tok, []byte(*in.Output)) })
	if err != nil {
		return nil, err
	}
	return &sfn.SendTaskSuccessOutput{}, nil
}

func (l *Local) SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, _ ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("SendTaskFailure")
	}
	err := l.withToken(ctx, in.TaskToken, func(tok string) error { return l.engine.SendTaskFailure(tok, deref(in.Error), deref(in.Cause)) })
	if err != nil {
		return nil, err
	}
	return &sfn.SendTaskFailureOutput{}, nil
}

func (l *Local) SendTaskHeartbeat(ctx context.Context, in *sfn.SendTaskHeartbeatInput, _ ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error) {
	if l.readOnly {
		return nil, errReadOnly("SendTaskHeartbeat")
	}
	err := l.withToken(ctx, in.TaskToken, func(tok string) error { return l.engine.SendTaskHeartbeat(tok) })
	if err != nil {
		return nil, err
	}
	return &sfn.SendTaskHeartbeatOutput{}, nil
}

// ---- helpers ----

func page(max int32, token *string) (int, string, error) {
	limit := 100
	if max > 0 {
		limit = int(min(max, 1000))
	}
	if token == nil || *token == "" {
		return limit, "", nil
	}
	s, err := decodeToken(*token)
	if err != nil {
		return 0, "", &types.InvalidToken{Message: ptr("Invalid Token: '" + *token + "'")}
	}
	return limit, s, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nilIfEmptyPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func validation(msg string) error { return &types.ValidationException{Message: ptr(msg)} }

func invalidDefinition(err error) error {
	return &types.InvalidDefinition{Message: ptr("Invalid State Machine Definition: '" + err.Error() + "'")}
}

// apiError turns the engine's errors into the API's typed errors.
func apiError(err error) error {
	var ae *engine.APIError
	if !errors.As(err, &ae) {
		return err
	}
	m := ptr(ae.Message)
	switch ae.Name {
	case "ExecutionAlreadyExists":
		return &types.ExecutionAlreadyExists{Message: m}
	case "InvalidName":
		return &types.InvalidName{Message: m}
	case "InvalidExecutionInput":
		return &types.InvalidExecutionInput{Message: m}
	case "TaskDoesNotExist":
		return &types.TaskDoesNotExist{Message: m}
	case "InvalidToken":
		return &types.InvalidToken{Message: m}
	case "TaskTimedOut":
		return &types.TaskTimedOut{Message: m}
	case "InvalidOutput":
		return &types.InvalidOutput{Message: m}
	case "StateMachineDoesNotExist":
		return &types.StateMachineDoesNotExist{Message: m}
	case "InvalidDefinition":
		return &types.InvalidDefinition{Message: m}
	}
	return err
}

func marshalValue(v any) ([]byte, error) { return data.Marshal(v) }

func sameJSON(a, b string) bool {
	va, errA := data.Parse([]byte(a))
	vb, errB := data.Parse([]byte(b))
	if errA != nil || errB != nil {
		return a == b
	}
	return data.Equal(va, vb)
}
