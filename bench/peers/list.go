package peers

import "strings"

// SplitList splits a comma-separated flag value into its non-empty,
// space-trimmed items: "a, b,,c" is [a b c], "" is none.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
