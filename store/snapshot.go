package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/goethe-log/goethe/engine"
)

// Snapshots of a replicated store: a consistent copy of every record,
// streamed from an engine view (engine.Snapshotter) to a lagging replica,
// which replaces its store with it (Restore).
//
// Stream format, version 1:
//
//	"goethe-snapshot" 0x01
//	uvarint n, n bytes: the format record of the store it was taken from
//	records: uvarint key length (> 0), key, uvarint value length, value
//	uvarint 0 (end of records)
//	uint64 big-endian: the number of records
//	uint32 big-endian: CRC-32C of every byte before it
//
// Records come in key order. The format record and a restore marker are not
// among them; AppliedIndex is (it is a record like any other).

var snapshotMagic = []byte("goethe-snapshot\x01")

// ErrNoSnapshot is returned by Snapshot when the store's engine does not
// implement engine.Snapshotter.
var ErrNoSnapshot = errors.New("store: engine cannot take snapshots")

// restoreBatchBytes bounds one engine batch of Restore.
const restoreBatchBytes = 4 << 20

// Snapshot is a consistent, read-only copy of a store as of one instant,
// taken by (*Store).Snapshot. Writes go on while it lives; it must be
// closed.
type Snapshot struct {
	view    engine.Snapshot
	format  []byte
	applied uint64
}

// Snapshot takes a consistent view of the whole store. The view includes
// AppliedIndex as of the same instant, so a replica restored from it knows
// which log entries it holds. Taking it does not wait for a commit in
// progress and does not stop writes: what it costs per engine is in the
// adapters' Snapshot documentation.
func (s *Store) Snapshot() (*Snapshot, error) {
	sn, ok := s.eng.(engine.Snapshotter)
	if !ok {
		return nil, ErrNoSnapshot
	}
	view, err := sn.Snapshot()
	if errors.Is(err, errNoSnapshotter) {
		return nil, ErrNoSnapshot
	}
	if err != nil {
		return nil, s.engineErr("snapshot", err)
	}
	out := &Snapshot{view: view, format: s.formatValue()}
	kvs, err := view.Scan(appliedKey, append(bytes.Clone(appliedKey), 0), 1, 0)
	if err != nil {
		_ = view.Close()
		return nil, s.engineErr("snapshot: read applied index", err)
	}
	if len(kvs) == 1 {
		if len(kvs[0].Value) != 8 {
			_ = view.Close()
			return nil, fmt.Errorf("%w: applied index", ErrCorrupted)
		}
		out.applied = binary.BigEndian.Uint64(kvs[0].Value)
	}
	return out, nil
}

// AppliedIndex is the store's AppliedIndex as of the snapshot.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// Close releases the engine view; it is idempotent.
func (sn *Snapshot) Close() error { return sn.view.Close() }

// WriteTo streams the snapshot to w in the format above, paging through the
// view. It may be called once.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	crc := crc32.New(castagnoli)
	out := io.MultiWriter(bw, crc)
	var scratch []byte
	scratch = append(scratch, snapshotMagic...)
	scratch = binary.AppendUvarint(scratch, uint64(len(sn.format)))
	scratch = append(scratch, sn.format...)
	if _, err := out.Write(scratch); err != nil {
		return cw.n, fmt.Errorf("store: write snapshot: %w", err)
	}
	var count uint64
	start := []byte{}
	for {
		kvs, err := sn.view.Scan(start, nil, 1024, 4<<20)
		if err != nil {
			return cw.n, fmt.Errorf("store: read snapshot: %w", err)
		}
		for _, kv := range kvs {
			if bytes.Equal(kv.Key, formatKey) || bytes.Equal(kv.Key, restoreKey) {
				continue
			}
			scratch = binary.AppendUvarint(scratch[:0], uint64(len(kv.Key)))
			scratch = append(scratch, kv.Key...)
			scratch = binary.AppendUvarint(scratch, uint64(len(kv.Value)))
			if _, err := out.Write(scratch); err != nil {
				return cw.n, fmt.Errorf("store: write snapshot: %w", err)
			}
			if _, err := out.Write(kv.Value); err != nil {
				return cw.n, fmt.Errorf("store: write snapshot: %w", err)
			}
			count++
		}
		if len(kvs) == 0 {
			break
		}
		start = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
	}
	scratch = binary.AppendUvarint(scratch[:0], 0)
	scratch = binary.BigEndian.AppendUint64(scratch, count)
	if _, err := out.Write(scratch); err != nil {
		return cw.n, fmt.Errorf("store: write snapshot: %w", err)
	}
	if _, err := bw.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return cw.n, fmt.Errorf("store: write snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("store: write snapshot: %w", err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// crcReader reads through a CRC.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

// Restore replaces the whole content of the store with a snapshot written
// by Snapshot.WriteTo, then resumes from it: topics, ids, seqs, cursors and
// AppliedIndex are the snapshot's. Local commits wait while it runs, and so
// do readers (Read, Info, Topics, GetCursor): they see the store before or
// after, never a partly replaced one. Waiting readers are woken when it is
// done.
//
// A snapshot of another format version is refused (ErrFormat) before
// anything changes. A failure after the replacement began leaves a marker
// that makes the store refuse writes and reads (ErrFailed) until it is
// reopened, and the next Open empties the store (AppliedIndex 0), so that
// the replica restores the snapshot again rather than serve half of one.
func (s *Store) Restore(r io.Reader) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.releaseCommitter()
	if s.c.failed != nil {
		return s.c.failed
	}
	cr := &crcReader{r: bufio.NewReaderSize(r, 256<<10), crc: crc32.New(castagnoli)}
	head := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(cr, head); err != nil {
		return fmt.Errorf("%w: snapshot header: %w", ErrCorrupted, err)
	}
	if !bytes.Equal(head, snapshotMagic) {
		return fmt.Errorf("%w: not a Goethe snapshot of version 1 (header %q)", ErrFormat, head)
	}
	format, err := readChunk(cr, 16)
	if err != nil {
		return fmt.Errorf("%w: snapshot format record: %w", ErrCorrupted, err)
	}
	if !bytes.Equal(format, s.formatValue()) {
		return fmt.Errorf("%w: the snapshot has format %v, this store %v", ErrFormat, format, s.formatValue())
	}

	// Readers wait from here until the new content is loaded.
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	var b engine.Batch
	b.DeleteRange([]byte{0}, []byte{prefixFormat})
	b.DeleteRange([]byte{prefixFormat + 1}, []byte{0xFF})
	b.Put(restoreKey, []byte{1})
	if err := s.eng.Write(&b, true); err != nil {
		return s.failRestore(err)
	}
	b.Reset()
	var count uint64
	for {
		key, err := readChunk(cr, 1<<16)
		if err != nil {
			return s.failRestore(fmt.Errorf("%w: snapshot record %d: %w", ErrCorrupted, count, err))
		}
		if len(key) == 0 {
			break
		}
		val, err := readChunk(cr, 1<<31)
		if err != nil {
			return s.failRestore(fmt.Errorf("%w: snapshot record %d: %w", ErrCorrupted, count, err))
		}
		if key[0] == prefixFormat || bytes.Equal(key, restoreKey) || key[0] == 0xFF {
			return s.failRestore(fmt.Errorf("%w: snapshot record %d has reserved key %x", ErrCorrupted, count, key))
		}
		b.Put(key, val)
		count++
		if b.Size() >= restoreBatchBytes {
			if err := s.eng.Write(&b, s.opts.SyncApplied); err != nil {
				return s.failRestore(err)
			}
			b.Reset()
		}
	}
	var trailer [12]byte
	if _, err := io.ReadFull(cr.r, trailer[:8]); err != nil {
		return s.failRestore(fmt.Errorf("%w: snapshot trailer: %w", ErrCorrupted, err))
	}
	cr.crc.Write(trailer[:8])
	want := cr.crc.Sum32()
	if _, err := io.ReadFull(cr.r, trailer[8:]); err != nil {
		return s.failRestore(fmt.Errorf("%w: snapshot trailer: %w", ErrCorrupted, err))
	}
	if n := binary.BigEndian.Uint64(trailer[:8]); n != count {
		return s.failRestore(fmt.Errorf("%w: snapshot holds %d records, its trailer says %d", ErrCorrupted, count, n))
	}
	if got := binary.BigEndian.Uint32(trailer[8:]); got != want {
		return s.failRestore(fmt.Errorf("%w: snapshot checksum %08x, computed %08x", ErrCorrupted, got, want))
	}
	b.Delete(restoreKey)
	if err := s.eng.Write(&b, true); err != nil {
		return s.failRestore(err)
	}
	if err := s.reloadAll(); err != nil {
		return s.failRestore(err)
	}
	return nil
}

// failRestore fails the write path after a Restore broke off half way.
func (s *Store) failRestore(err error) error {
	err = fmt.Errorf("%w: restore from snapshot: %w", ErrFailed, err)
	s.fail(err)
	broken := fmt.Errorf("%w: a restore from a snapshot broke off half way; restart the node to restore it again", ErrFailed)
	s.restoreBroken.Store(&broken)
	return err
}

// readChunk reads a uvarint length and that many bytes, at most max.
func readChunk(r *crcReader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("length %d over the bound %d", n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// reloadAll replaces the in-memory state with the engine's after a Restore:
// the topic counter, every topic's metadata (the topic structs of names
// that keep their id are kept, so that their followers stay attached), and
// AppliedIndex; then it wakes every reader waiting on a topic. The caller
// is the committer.
func (s *Store) reloadAll() error {
	next := uint64(1)
	v, err := s.eng.Get(topicIDKey)
	switch {
	case errors.Is(err, engine.ErrNotFound):
	case err != nil:
		return fmt.Errorf("store: read topic counter: %w", err)
	case len(v) != 8:
		return fmt.Errorf("%w: topic counter", ErrCorrupted)
	default:
		next = beUint64(v)
	}
	var metas []topicMeta
	err = s.scanMetas(next, func(m topicMeta) error {
		metas = append(metas, m)
		return nil
	})
	if err != nil {
		return err
	}
	index, err := s.readAppliedIndex()
	if err != nil {
		return err
	}
	s.c.nextTopicID = next

	s.mu.Lock()
	old := s.topics
	s.topics = make(map[string]*topic, len(metas))
	for _, m := range metas {
		if t := old[m.name]; t != nil && t.id == m.id {
			t.tail.drop()
			t.meta = m
			pub := m
			t.pub.Store(&pub)
			s.topics[m.name] = t
		} else {
			s.topics[m.name] = newTopic(m)
		}
	}
	s.mu.Unlock()
	for _, t := range s.topics { // the committer's: no lock needed to read
		if err := s.loadDedupe(t); err != nil {
			return err
		}
	}
	// Once the topics are in place: a reader that WaitApplied lets
	// through sees them.
	s.setApplied(index)
	for name, t := range old {
		if s.topics[name] != t {
			t.tail.drop()
			t.deleted.Store(true)
			s.notify(t) // followers of a topic that is gone or replaced
		}
		s.wake(name)
	}
	for _, m := range metas {
		if old[m.name] == nil {
			s.wake(m.name)
		}
	}
	s.kickReclaim() // the snapshot may hold deleted topics to reclaim
	return nil
}

// finishInterruptedRestore empties a store whose Restore broke off (its
// marker is there): half of a snapshot must not be served. AppliedIndex is
// then 0, so the replica restores its snapshot again.
func (s *Store) finishInterruptedRestore() error {
	_, err := s.eng.Get(restoreKey)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: read restore marker: %w", err)
	}
	// Readers wait from here until the new content is loaded.
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	var b engine.Batch
	b.DeleteRange([]byte{0}, []byte{prefixFormat})
	b.DeleteRange([]byte{prefixFormat + 1}, []byte{0xFF})
	if err := s.eng.Write(&b, true); err != nil {
		return fmt.Errorf("store: empty the store after an interrupted restore: %w", err)
	}
	return nil
}
