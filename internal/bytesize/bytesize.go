// Package bytesize reads and writes byte counts with binary units, as the
// command lines of goethe and goethectl take and print them ("64MiB",
// "10 GiB", "1048576").
package bytesize

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// units are the accepted suffixes, longest first so "B" matches last.
var units = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// ErrSyntax is Parse's error for anything but a count with an optional
// unit; its message says what is accepted.
var ErrSyntax = errors.New("want a number of bytes, optionally with a unit: KiB, MiB, GiB, TiB")

// Parse reads "1048576", "1MiB", "512 KiB" or "3B" as a byte count. It
// refuses, with ErrSyntax, negative numbers, fractions, decimal units (MB)
// and counts that overflow uint64.
func Parse(s string) (uint64, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxUint64>>shift {
		return 0, ErrSyntax
	}
	return n << shift, nil
}

// Format writes n with the largest binary unit that divides it exactly
// ("10GiB", "1536KiB", "1000B"), so that Parse(Format(n)) == n.
func Format(n uint64) string {
	for _, u := range units {
		if u.shift > 0 && n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatUint(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}

// Human writes n rounded to one decimal in the largest unit it reaches
// ("1.5MiB", "812B"), for tables a person reads; it does not round-trip.
func Human(n uint64) string {
	for _, u := range units {
		if u.shift > 0 && n >= 1<<u.shift {
			return strconv.FormatFloat(float64(n)/float64(uint64(1)<<u.shift), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}
