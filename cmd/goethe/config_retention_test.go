package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goethe-log/goethe/store"
)

// The retention flags become the store's defaults; 0 and unset keep
// everything; a negative age and a malformed size are refused, naming the
// flag or variable.
func TestRetentionFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  func(string) (string, bool)
		want store.TopicConfig
		err  string
	}{
		{nil, env(), store.TopicConfig{}, ""},
		{[]string{"--retention-max-age", "168h", "--retention-max-events", "1000000", "--retention-max-bytes", "10GiB"}, env(),
			store.TopicConfig{MaxAge: 168 * time.Hour, MaxEvents: 1_000_000, MaxBytes: 10 << 30}, ""},
		{[]string{"--retention-max-bytes", "0", "--retention-max-age", "0s"}, env(), store.TopicConfig{}, ""},
		{nil, env("GOETHE_RETENTION_MAX_BYTES", "512MiB", "GOETHE_RETENTION_MAX_AGE", "24h"),
			store.TopicConfig{MaxAge: 24 * time.Hour, MaxBytes: 512 << 20}, ""},
		{[]string{"--retention-max-age", "-1s"}, env(), store.TopicConfig{}, "--retention-max-age -1s: must not be negative"},
		{[]string{"--retention-max-bytes", "10GB"}, env(), store.TopicConfig{}, "retention-max-bytes"},
		{[]string{"--retention-max-events", "-5"}, env(), store.TopicConfig{}, "retention-max-events"},
		{nil, env("GOETHE_RETENTION_MAX_AGE", "a week"), store.TopicConfig{}, "GOETHE_RETENTION_MAX_AGE"},
	} {
		cfg, err := parseConfig(c.args, c.env, &bytes.Buffer{})
		if c.err != "" {
			require.ErrorContains(t, err, c.err, "%v", c.args)
			continue
		}
		require.NoError(t, err, "%v", c.args)
		var o store.Options
		cfg.retention.storeOptions(&o)
		require.Equal(t, c.want, o.Retention, "%v", c.args)
	}
	var out bytes.Buffer
	_, err := parseConfig([]string{"-h"}, env(), &out)
	require.ErrorIs(t, err, errHelp)
	for _, f := range []string{"-retention-max-age", "-retention-max-events", "-retention-max-bytes"} {
		require.Contains(t, out.String(), f)
	}
}
