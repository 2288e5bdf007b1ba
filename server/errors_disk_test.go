package server

import (
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/goethe-log/goethe/engine"
	goethev1 "github.com/goethe-log/goethe/spec/goethe/v1"
	"github.com/goethe-log/goethe/store"
)

// A full disk, as the store reports it, is RESOURCE_EXHAUSTED, DISK_FULL,
// with the fixed message a user can act on and nothing of the engine's
// error; it has its own codeTable entry.
func TestDiskFullStatus(t *testing.T) {
	const dir = "/srv/goethe-data/leveldb"
	cause := fmt.Errorf("%w: %w", engine.ErrNoSpace, &fs.PathError{Op: "write", Path: dir + "/000001.log", Err: syscall.ENOSPC})
	for _, err := range []error{
		fmt.Errorf("%w: %w", store.ErrNoSpace, fmt.Errorf("store: write batch: %w", cause)),
		fmt.Errorf("%w: 10 bytes free on the data volume, below the reserve of 20 (MinFreeBytes)", store.ErrNoSpace),
	} {
		st := status.Convert(toStatus(err))
		require.Equal(t, codes.ResourceExhausted, st.Code())
		require.Equal(t, diskFullMessage, st.Message())
		require.NotContains(t, st.Message(), dir)
		require.Len(t, st.Details(), 1)
	}
	require.Equal(t, goethev1.ReasonDiskFull, lookupCode(store.ErrNoSpace).reason)
}

// Messages that may carry an engine's text lose every absolute path but
// its last element; messages made of the request keep theirs.
func TestRedactPaths(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"write /srv/data/leveldb/000001.log: no space left on device", "write …/000001.log: no space left on device"},
		{"/abs/dir/MANIFEST-000001 is damaged", "…/MANIFEST-000001 is damaged"},
		{`open "/var/lib/goethe/bolt/goethe.db": bad`, `open "…/goethe.db": bad`},
		{"file=/a/b/c.sst (x)", "file=…/c.sst (x)"},
		{"pebble: (/d/e/f.log) and [/g/h]", "pebble: (…/f.log) and […/h]"},
		{"ratio 3 / 4 and a/b/c relative", "ratio 3 / 4 and a/b/c relative"},
		{"no path at all", "no path at all"},
	} {
		require.Equal(t, c.out, redactPaths(c.in), c.in)
	}

	const dir = "/srv/goethe-data"
	pathErr := &fs.PathError{Op: "write", Path: dir + "/000001.log", Err: syscall.EIO}
	for _, c := range []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("store: read: %w", pathErr), codes.Internal},
		{fmt.Errorf("%w: %w", store.ErrFailed, pathErr), codes.Unavailable},
		{fmt.Errorf("%w: %w", store.ErrCorrupted, pathErr), codes.DataLoss},
		{fmt.Errorf("%w: %w", store.ErrClosed, pathErr), codes.Unavailable},
	} {
		st := status.Convert(toStatus(c.err))
		require.Equal(t, c.code, st.Code(), "%v", c.err)
		require.NotContains(t, st.Message(), dir, "%v", c.err)
		require.Contains(t, st.Message(), "…/000001.log", "%v", c.err)
	}
	// A client's own text in INVALID_ARGUMENT is said back as given.
	st := status.Convert(toStatus(fmt.Errorf("%w: page_token /x/y", errBadRequest)))
	require.Contains(t, st.Message(), "/x/y")
}
