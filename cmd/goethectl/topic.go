package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goethe-log/goethe/client"
	"github.com/goethe-log/goethe/internal/bytesize"
)

// topicSubcommands are the words after "topic" that name a subcommand;
// any other word is a topic to describe ("topic orders"). A topic named
// like a subcommand is described with "topic info NAME".
var topicSubcommands = []string{"info", "set", "trim", "delete"}

var topicInfoCommand = &command{
	name:    "topic info",
	args:    "TOPIC",
	summary: "describe a topic (as \"topic TOPIC\"): for a topic named set, trim, delete or info",
	help:    topicCommand.help,
	nargs:   exactly(1),
	flags:   topicCommand.flags,
}

// configFlags are the settings topic set takes, each recorded only when
// given.
type configFlags struct {
	cfg   client.TopicConfig
	clear []client.ConfigField
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.Func("max-age", "remove events stored longer ago than `D` (such as 24h, 7d; 0: no limit)", func(s string) error {
		d, err := parseDays(s)
		c.cfg.MaxAge = &d
		return err
	})
	fs.Func("max-events", "keep at most `N` events, removing the oldest (0: no limit)", func(s string) error {
		n, err := parseCount(s)
		c.cfg.MaxEvents = &n
		return err
	})
	fs.Func("max-bytes", "keep at most `SIZE` of events (such as 10GiB), removing the oldest (0: no limit)", func(s string) error {
		n, err := bytesize.Parse(s)
		c.cfg.MaxBytes = &n
		return err
	})
	fs.Func("dedupe-window", "remember dedupe keys for `D` (0: no dedupe on this topic)", func(s string) error {
		d, err := parseDays(s)
		c.cfg.DedupeWindow = &d
		return err
	})
	fs.Func("clear", "drop the topic's own `SETTINGS` (comma-separated: max-age, max-events, max-bytes, dedupe-window) so that\n"+
		"the server's defaults apply again", func(s string) error {
		for f := range strings.SplitSeq(s, ",") {
			name := strings.TrimSpace(f)
			switch name {
			case "max-age", "max-events", "max-bytes", "dedupe-window":
				c.clear = append(c.clear, client.ConfigField(strings.ReplaceAll(name, "-", "_")))
			default:
				return fmt.Errorf("%q is not a setting: want max-age, max-events, max-bytes or dedupe-window", name)
			}
		}
		return nil
	})
}

func (c *configFlags) empty() bool {
	return c.cfg.MaxAge == nil && c.cfg.MaxEvents == nil && c.cfg.MaxBytes == nil && c.cfg.DedupeWindow == nil && len(c.clear) == 0
}

// parseDays reads a duration as time.ParseDuration does, plus whole days
// ("7d"); a negative one is refused.
func parseDays(s string) (time.Duration, error) {
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("want a duration of 0 or more, such as 24h or 7d")
	}
	if d, ok := parseAgo(s); ok {
		return d, nil
	}
	return 0, errors.New("want a duration such as 90m, 24h or 7d")
}

func parseCount(s string) (uint64, error) {
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil || !isDigits(s) {
		return 0, errors.New("want a whole number of 0 or more")
	}
	return n, nil
}

var topicSetCommand = &command{
	name:    "topic set",
	args:    "TOPIC",
	summary: "set a topic's retention (max age, events, bytes) and dedupe window",
	help: `
Sets TOPIC's own retention and dedupe settings, creating the topic, empty,
if it does not exist; settings not given keep their value, and --clear drops
some so that the server's defaults (goethe --retention-max-age,
--retention-max-events, --retention-max-bytes, --dedupe-window) apply
again. Retention keeps the events within every limit and removes the oldest
in the background, within seconds; "topic trim" removes at once. Prints the
settings that apply afterwards. Needs the admin permission.`,
	nargs: exactly(1),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		var cf configFlags
		cf.register(fs)
		return func(ctx context.Context, e *env, args []string) error {
			if cf.empty() {
				return usagef("topic set", "topic set: give at least one of --max-age, --max-events, --max-bytes, --dedupe-window, --clear")
			}
			c, err := dial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			t, err := c.SetTopicConfig(ctx, args[0], cf.cfg, cf.clear...)
			if err != nil {
				return explain(err, g.server)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "topic\t%s\n", t.Name)
			writeConfig(tw, &t)
			return tw.Flush()
		}
	},
}

// writeConfig prints the settings that apply to t, each marked when it is
// the server's default.
func writeConfig(tw *tabwriter.Writer, t *client.TopicInfo) {
	eff, own := t.Effective, t.Config
	line := func(name string, set bool, value string) {
		src := "server default"
		if set {
			src = "set on the topic"
		}
		fmt.Fprintf(tw, "%s\t%s\t(%s)\n", name, value, src)
	}
	line("max age", own.MaxAge != nil, durationOr(eff.MaxAge, "no limit"))
	line("max events", own.MaxEvents != nil, countOr(eff.MaxEvents, "no limit"))
	line("max bytes", own.MaxBytes != nil, sizeOr(eff.MaxBytes, "no limit"))
	line("dedupe window", own.DedupeWindow != nil, durationOr(eff.DedupeWindow, "off"))
}

func durationOr(d *time.Duration, zero string) string {
	if d == nil || *d == 0 {
		return zero
	}
	if *d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", *d/(24*time.Hour))
	}
	return d.String()
}

func countOr(n *uint64, zero string) string {
	if n == nil || *n == 0 {
		return zero
	}
	return fmt.Sprint(*n)
}

func sizeOr(n *uint64, zero string) string {
	if n == nil || *n == 0 {
		return zero
	}
	return bytesize.Format(*n)
}

var topicTrimCommand = &command{
	name:    "topic trim",
	args:    "TOPIC",
	summary: "remove a topic's events before a position, at once",
	help: `
Removes every event of TOPIC before --before POS, at once: seq:N (the
events with a seq below N), id:N or an id (those with an id below it), a
time or a time ago such as -1h (those stored before it), or end (all of
them). Consumers positioned before the removed events start at the first
one left. Needs the admin permission.`,
	nargs: exactly(1),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		before := fs.String("before", "", "remove the events before `POS`")
		return func(ctx context.Context, e *env, args []string) error {
			if *before == "" {
				return usagef("topic trim", "topic trim: --before POS is required")
			}
			p, err := parsePosition(*before)
			if err != nil {
				return usagef("topic trim", "--before %s", err)
			}
			c, err := dial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			var at client.TrimPosition
			switch p.kind {
			case posBeginning:
				at = client.BeforeSeq(0)
			case posSeq:
				at = client.BeforeSeq(p.seq)
			case posID:
				at = client.BeforeID(p.id)
			case posTime:
				at = client.BeforeTime(p.time)
			case posEnd:
				t, err := c.Topic(ctx, args[0])
				if err != nil {
					return explain(err, g.server)
				}
				at = client.BeforeSeq(t.LastSeq + 1)
			}
			removed, t, err := c.TrimTopic(ctx, args[0], at)
			if err != nil {
				return explain(err, g.server)
			}
			if t.Count == 0 {
				fmt.Fprintf(e.stdout, "removed %d events; %s holds none now (its next event gets seq %d)\n", removed, t.Name, t.LastSeq+1)
				return nil
			}
			fmt.Fprintf(e.stdout, "removed %d events; %s now starts at seq %d\n", removed, t.Name, t.FirstSeq)
			return nil
		}
	},
}

var topicDeleteCommand = &command{
	name:    "topic delete",
	args:    "TOPIC",
	summary: "delete a topic with its events and cursors",
	help: `
Deletes TOPIC with its events and its consumers' cursors. The name is free
at once: the next produce to it creates a new, empty topic whose seqs start
at 1. Consumers following it end with an error. The server reclaims the
space in the background. Asks first on a terminal; --yes (-y) does not ask,
and without a terminal --yes is required. Needs the admin permission.`,
	nargs: exactly(1),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		yes := fs.Bool("yes", false, "delete without asking")
		fs.BoolVar(yes, "y", false, "short for --yes")
		return func(ctx context.Context, e *env, args []string) error {
			name := args[0]
			c, err := dial(g)
			if err != nil {
				return err
			}
			defer c.Close()
			if !*yes {
				if !e.stdinTTY {
					return usagef("topic delete", "topic delete: standard input is not a terminal to ask on: add --yes to delete %q", name)
				}
				t, err := c.Topic(ctx, name)
				if err != nil {
					return explain(err, g.server)
				}
				fmt.Fprintf(e.stdout, "Delete topic %q with its %d events (%s) and its cursors? This cannot be undone. [y/N] ",
					name, t.Count, bytesize.Human(t.Bytes))
				answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return errors.New("not deleted")
				}
			}
			if err := c.DeleteTopic(ctx, name); err != nil {
				return explain(err, g.server)
			}
			fmt.Fprintf(e.stdout, "deleted topic %s\n", name)
			return nil
		}
	},
}
