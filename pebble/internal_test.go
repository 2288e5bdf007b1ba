package pebble

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type recordingLogger struct{ lines []string }

func (l *recordingLogger) Infof(string, ...any) {}
func (l *recordingLogger) Errorf(format string, args ...any) {
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}
func (l *recordingLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("Fatalf: "+format, args...))
}

// TestBackgroundErrorLogInterval checks the boundary of the log limit: a
// repeat within the interval is counted, not logged; at the interval the
// next one is logged with the count.
func TestBackgroundErrorLogInterval(t *testing.T) {
	log := &recordingLogger{}
	s := &failState{logger: log, interval: time.Hour}
	s.logLimited("error %d", 1)
	s.logLimited("error %d", 2)
	require.Equal(t, []string{"error 1"}, log.lines)

	s.lastLog = time.Now().Add(-time.Hour + time.Minute) // a minute short
	s.logLimited("error %d", 3)
	require.Len(t, log.lines, 1)

	s.lastLog = time.Now().Add(-time.Hour) // at the interval
	s.logLimited("error %d", 4)
	require.Len(t, log.lines, 2)
	require.Equal(t, "error 4 (2 more since the last one logged)", log.lines[1])
}

// TestGuardLoggerFatalf: a fatal message carrying an error is recorded as
// the write failure and logged, never passed to the inner Fatalf; one
// without an error (an invariant violation) still is.
func TestGuardLoggerFatalf(t *testing.T) {
	log := &recordingLogger{}
	s := &failState{logger: log, interval: time.Minute}
	g := guardLogger{inner: log, state: s}
	cause := fmt.Errorf("write 000002.log: %w", os.ErrClosed)
	g.Fatalf("pebble: fatal commit error: %v", cause)
	require.ErrorIs(t, s.fatalErr(), os.ErrClosed)
	require.ErrorIs(t, s.failed(), os.ErrClosed)
	require.Len(t, log.lines, 1)
	require.True(t, strings.HasPrefix(log.lines[0], "fatal error, the engine stops taking writes"))
	require.Panics(t, func() { g.Fatalf("invariant violated: %d", 1) })
}

// TestBallast: a read-write Open leaves a ballast of Options.BallastBytes.
func TestBallast(t *testing.T) {
	for _, size := range []int64{1, 64<<10 + 1, DefaultBallastBytes} {
		dir := t.TempDir()
		db, err := Open(dir, Options{BallastBytes: size})
		require.NoError(t, err)
		st, err := os.Stat(filepath.Join(dir, BallastFile))
		require.NoError(t, err)
		require.Equal(t, size, st.Size())
		require.NoError(t, db.Close())
	}
}
