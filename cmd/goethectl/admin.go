package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/goethe-log/goethe/internal/bytesize"

	"github.com/goethe-log/goethe/client"
)

var topicsCommand = &command{
	name:    "topics",
	summary: "list the topics",
	help: `
Lists every topic in byte order of its name: its number of events and
their size, its first and last event's seq and time (when they were
stored), and its last event's id. With --json, one JSON object per topic per
line, with first and last id (as strings), seq and time, count, bytes,
creation time and the retention and dedupe settings that apply.`,
	nargs: exactly(0),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		asJSON := fs.Bool("json", false, "print one JSON object per topic")
		return func(ctx context.Context, e *env, _ []string) error {
			return listTopics(ctx, e, g, *asJSON)
		}
	},
}

func listTopics(ctx context.Context, e *env, g *globals, asJSON bool) error {
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()
	out := bufio.NewWriter(e.stdout)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	var buf bytes.Buffer
	n := 0
	for t, err := range c.Topics(ctx, 0) {
		if err != nil {
			out.Flush()
			return explain(err, g.server)
		}
		if asJSON {
			line, err := marshalLine(&buf, newJSONTopic(&t))
			if err != nil {
				return err
			}
			out.Write(line)
			continue
		}
		if n == 0 {
			fmt.Fprintln(tw, "TOPIC\tEVENTS\tBYTES\tFIRST SEQ\tLAST SEQ\tFIRST TIME\tLAST TIME\tLAST ID")
		}
		n++
		first, last := "-", "-"
		if t.Count > 0 {
			first, last = formatTime(idTime(t.FirstID)), formatTime(idTime(t.LastID))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%d\n", t.Name, t.Count, bytesize.Human(t.Bytes), t.FirstSeq, t.LastSeq, first, last, t.LastID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 && !asJSON {
		fmt.Fprintln(e.stderr, "goethectl: no topics yet")
	}
	return out.Flush()
}

var topicCommand = &command{
	name:    "topic",
	args:    "TOPIC",
	summary: "describe a topic: its events, first and last",
	help: `
Describes TOPIC: when it was created, how many events it holds and their
size, the seq, id and time of its first and last event, and its retention
and dedupe settings (see "topic set"). A topic named set, trim, delete or
info is described with "topic info TOPIC".`,
	nargs: exactly(1),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		asJSON := fs.Bool("json", false, "print a JSON object")
		return func(ctx context.Context, e *env, args []string) error {
			return describeTopic(ctx, e, g, args[0], *asJSON)
		}
	},
}

func describeTopic(ctx context.Context, e *env, g *globals, name string, asJSON bool) error {
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()
	t, err := c.Topic(ctx, name)
	if err != nil {
		return explain(err, g.server)
	}
	if asJSON {
		var buf bytes.Buffer
		line, err := marshalLine(&buf, newJSONTopic(&t))
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(line)
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "topic\t%s\n", t.Name)
	fmt.Fprintf(tw, "created\t%s\n", formatTime(t.Created))
	fmt.Fprintf(tw, "events\t%d\n", t.Count)
	fmt.Fprintf(tw, "bytes\t%s\n", bytesize.Human(t.Bytes))
	if t.Count > 0 {
		fmt.Fprintf(tw, "first\tseq %d\tid %d\t%s\n", t.FirstSeq, t.FirstID, formatTime(idTime(t.FirstID)))
		fmt.Fprintf(tw, "last\tseq %d\tid %d\t%s\n", t.LastSeq, t.LastID, formatTime(idTime(t.LastID)))
	} else if t.LastSeq > 0 {
		fmt.Fprintf(tw, "last\tseq %d\tid %d\t(removed; the next event gets seq %d)\n", t.LastSeq, t.LastID, t.LastSeq+1)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	writeConfig(tw, &t)
	return tw.Flush()
}

var cursorGetCommand = &command{
	name:    "cursor get",
	args:    "TOPIC CONSUMER",
	summary: "show a consumer's cursor and its lag",
	help: `
Shows CONSUMER's cursor in TOPIC: the id of the last event it processed
(and that id's time), when the cursor was stored, and its lag: the number of
events after it.`,
	nargs: exactly(2),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		asJSON := fs.Bool("json", false, "print a JSON object")
		return func(ctx context.Context, e *env, args []string) error {
			return getCursor(ctx, e, g, args[0], args[1], *asJSON)
		}
	},
}

func getCursor(ctx context.Context, e *env, g *globals, topic, consumer string, asJSON bool) error {
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()
	cur, err := c.GetCursor(ctx, topic, consumer)
	if err != nil {
		return explain(err, g.server)
	}
	j := jsonCursor{Topic: topic, Consumer: consumer, ID: cur.ID, Time: formatTime(idTime(cur.ID)),
		Updated: formatTime(cur.Updated), LastID: cur.LastID, LastSeq: cur.LastSeq, Lag: cur.Lag}
	if asJSON {
		var buf bytes.Buffer
		line, err := marshalLine(&buf, j)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(line)
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "topic\t%s\n", j.Topic)
	fmt.Fprintf(tw, "consumer\t%s\n", j.Consumer)
	fmt.Fprintf(tw, "id\t%d\t%s\n", j.ID, j.Time)
	fmt.Fprintf(tw, "updated\t%s\n", j.Updated)
	fmt.Fprintf(tw, "lag\t%d\n", j.Lag)
	return tw.Flush()
}

var cursorSetCommand = &command{
	name:    "cursor set",
	args:    "TOPIC CONSUMER POS",
	summary: "set a consumer's cursor: a seq, an event id, a time, beginning or end",
	help: `
Stores CONSUMER's cursor in TOPIC, so that "consume --consumer CONSUMER"
resumes from there. POS is what consume --from takes:
  seq:N         resume at the event with seq N (past the last: at the end)
  id:N          resume after the event with id N (a bare id of 16 digits or
                more works too; a small bare number is refused as ambiguous)
  -5m, 2h, 3d   resume at the first event stored that long ago or later
  TIME          an RFC 3339 time: resume at the first event at or after it
  beginning     resume at the first event
  end, now      resume after the topic's current last event
The topic must exist.`,
	nargs: exactly(3),
	flags: func(fs *flag.FlagSet, g *globals) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			return setCursor(ctx, g, args[0], args[1], args[2])
		}
	},
}

func setCursor(ctx context.Context, g *globals, topic, consumer, pos string) error {
	p, err := parsePosition(pos)
	if err != nil {
		return usagef("cursor set", "%v", err)
	}
	c, err := dial(g)
	if err != nil {
		return err
	}
	defer c.Close()
	if p.kind == posSeq {
		id, err := seqCursor(ctx, c, topic, p.seq)
		if err != nil {
			return explain(err, g.server)
		}
		return explain(c.CommitCursor(ctx, topic, consumer, id), g.server)
	}
	var lastID uint64
	if p.kind == posEnd {
		t, err := c.Topic(ctx, topic)
		if err != nil {
			return explain(err, g.server)
		}
		lastID = t.LastID
	}
	return explain(c.CommitCursor(ctx, topic, consumer, p.cursorID(lastID)), g.server)
}

// seqCursor is the cursor id that makes a consumer resume at the event with
// seq: the id just before that event's (the server finds the event). A seq
// past the topic's last resumes at its end; the topic must exist.
func seqCursor(ctx context.Context, c *client.Client, topic string, seq uint64) (uint64, error) {
	t, err := c.Topic(ctx, topic)
	if err != nil {
		return 0, err
	}
	for ev, err := range c.Consume(ctx, topic, client.ConsumeOptions{From: client.AtSeq(seq), Limit: 1}) {
		if err != nil {
			return 0, err
		}
		return ev.ID - 1, nil // ids are times since 1970: never 0
	}
	return t.LastID, nil
}
