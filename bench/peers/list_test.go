package peers

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitList(t *testing.T) {
	require.Equal(t, []string{"a", "b", "c"}, SplitList(" a, b,,c ,"))
	require.Empty(t, SplitList(""))
	require.Empty(t, SplitList(" , "))
}

func TestSelfCommand(t *testing.T) {
	got := SelfCommand("matrix", []string{"-out", "/r/results/e2e", "-root", "/r", "-pidfile=/tmp/p", "-command", "x y", "-runs", "2"}, "/r", "command")
	require.Equal(t, "matrix -out results/e2e -runs 2", got)
}
