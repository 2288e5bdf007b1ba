package bytesize

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]uint64{
		"0": 0, "1048576": 1 << 20, "1MiB": 1 << 20, "512 KiB": 512 << 10, "3B": 3, " 10GiB ": 10 << 30,
		"16777215TiB": 16777215 << 40, "18446744073709551615": math.MaxUint64,
	} {
		got, err := Parse(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "-1", "1.5MiB", "1MB", "1 GB", "MiB", "16777216TiB", "18446744073709551616", "1KiBB"} {
		_, err := Parse(bad)
		require.ErrorIs(t, err, ErrSyntax, bad)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1000: "1000B", 1024: "1KiB", 1536 << 10: "1536KiB", 10 << 30: "10GiB", 1<<40 + 1: "1099511627777B"} {
		require.Equal(t, want, Format(n))
		back, err := Parse(want)
		require.NoError(t, err)
		require.Equal(t, n, back)
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 812: "812B", 1024: "1.0KiB", 3 << 19: "1.5MiB", 10 << 30: "10.0GiB"} {
		require.Equal(t, want, Human(n))
	}
}
