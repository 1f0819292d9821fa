package engine

import "github.com/aws/aws-sdk-go-v2/service/sfn/types"

// succeedState ends its program successfully; InputPath and OutputPath
// still apply.
type succeedState struct{}

func (succeedState) exec(t *thread, n *node, input any) (any, *node, error) {
	t.enter(n, types.HistoryEventTypeSucceedStateEntered, input)
	out, err := n.in.apply(t, n, input)
	if err != nil {
		return nil, nil, err
	}
	if out, err = n.out.apply(t, n, out); err != nil {
		return nil, nil, err
	}
	t.exit(n, types.HistoryEventTypeSucceedStateExited, out, nil)
	return out, nil, nil
}
