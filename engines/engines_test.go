package engines_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
)

func TestOpenEveryName(t *testing.T) {
	require.Contains(t, engines.Names, engines.Default)
	for _, name := range engines.Names {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			e, err := engines.Open(name, dir)
			require.NoError(t, err)
			var b engine.Batch
			b.Put([]byte("k"), []byte(name))
			require.NoError(t, e.Write(&b, true))
			require.NoError(t, e.Close())

			e, err = engines.Open(name, dir)
			require.NoError(t, err)
			defer e.Close()
			v, err := e.Get([]byte("k"))
			require.NoError(t, err)
			require.Equal(t, name, string(v))

			_, err = engines.Open(name, dir)
			require.ErrorIs(t, err, engine.ErrLocked)
		})
	}
}

func TestOpenUnknown(t *testing.T) {
	for _, name := range []string{"", "rocksdb", "LevelDB", "bbolt"} {
		e, err := engines.Open(name, t.TempDir())
		require.ErrorIs(t, err, engines.ErrUnknownEngine)
		require.Nil(t, e, "a failed Open returns a nil interface")
		for _, valid := range engines.Names {
			require.Contains(t, err.Error(), valid, "the error lists the valid names")
		}
	}
}
