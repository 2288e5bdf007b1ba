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
