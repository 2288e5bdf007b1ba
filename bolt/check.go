package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/goethe-log/goethe/engine"
)

// The bbolt file format, as far as checkTree reads it (bbolt v1.4,
// internal/common): every page starts with a 16-byte header (id uint64,
// flags uint16, count uint16, overflow uint32); a branch element is (pos,
// ksize uint32, child pgid uint64), a leaf element (flags, pos, ksize, vsize
// uint32), pos counting from the element itself; a meta (pages 0 and 1,
// after the header) is magic, version, page size, flags (uint32 each), the
// root bucket (root pgid, sequence uint64), freelist pgid, high-water pgid,
// txid and an FNV-64a checksum of what precedes it.
const (
	pageHeaderSize  = 16
	elementSize     = 16
	branchPageFlag  = 0x01
	leafPageFlag    = 0x02
	bucketLeafFlag  = 0x01
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	metaChecksumEnd = 56
	inBucketSize    = 16
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	hwm      uint64
	txid     uint64
}

// readMeta decodes and validates the meta of the page at off, returning
// false if it is not a valid meta.
func readMeta(f *os.File, off int64) (boltMeta, bool) {
	buf := make([]byte, pageHeaderSize+64)
	if _, err := f.ReadAt(buf, off); err != nil {
		return boltMeta{}, false
	}
	m := buf[pageHeaderSize:]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumEnd])
	if h.Sum64() != le.Uint64(m[metaChecksumEnd:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), hwm: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// treeChecker walks a bbolt file's B+trees from the current meta and
// checks what bbolt's own open-time page scan (DB.freepages, run when no
// freelist is stored) checks: every reachable page within the high-water
// mark and referenced once, of branch or leaf type, its elements inside
// the page, its keys strictly ascending and inside the range its parent
// gives it. bbolt reports such a failure by panicking in a goroutine of
// its own, which ends the process; checkTree reports it as an error.
type treeChecker struct {
	f         *os.File
	size      int64
	pageSize  int64
	hwm       uint64
	reachable map[uint64]bool
}

// checkFile checks the bbolt file f (held locked by the caller). A file
// whose metas are both invalid is left to bbolt, which reports that itself.
func checkFile(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	m0, ok0 := readMeta(f, 0)
	pageSize := int64(os.Getpagesize())
	if ok0 {
		pageSize = int64(m0.pageSize)
	}
	m1, ok1 := readMeta(f, pageSize)
	var m boltMeta
	switch {
	case ok0 && ok1:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case ok0:
		m = m0
	case ok1:
		m = m1
	default:
		return nil
	}
	if m.pageSize < 1024 || m.pageSize > 1<<20 {
		return fmt.Errorf("%w: page size %d", engine.ErrCorrupted, m.pageSize)
	}
	c := &treeChecker{f: f, size: st.Size(), pageSize: int64(m.pageSize), hwm: m.hwm, reachable: map[uint64]bool{}}
	return c.bucket(m.root, nil)
}

// bucket checks the tree of a bucket rooted at root and, recursively, the
// buckets stored in it. Inline buckets (root 0) are skipped, as bbolt does.
func (c *treeChecker) bucket(root uint64, stack []uint64) error {
	if root == 0 {
		return nil
	}
	var children []uint64
	if err := c.page(root, nil, nil, append(stack, root), &children); err != nil {
		return err
	}
	for _, child := range children {
		if err := c.bucket(child, append(stack, root)); err != nil {
			return err
		}
	}
	return nil
}

func (c *treeChecker) corrupt(id uint64, stack []uint64, format string, args ...any) error {
	return fmt.Errorf("%w: page %d (path %v): %s", engine.ErrCorrupted, id, stack, fmt.Sprintf(format, args...))
}

// page checks page id, whose keys must lie in [lower, upper) (nil: no
// bound), and its subtree; the roots of sub-buckets found in its leaves are
// appended to children.
func (c *treeChecker) page(id uint64, lower, upper []byte, stack []uint64, children *[]uint64) error {
	if id < 2 || id >= c.hwm {
		return c.corrupt(id, stack, "out of bounds (high-water mark %d)", c.hwm)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := c.f.ReadAt(hdr, int64(id)*c.pageSize); err != nil {
		if errors.Is(err, io.EOF) {
			return c.corrupt(id, stack, "beyond the end of the file")
		}
		return err
	}
	le := binary.LittleEndian
	hid, flags, count, overflow := le.Uint64(hdr), le.Uint16(hdr[8:]), int(le.Uint16(hdr[10:])), uint64(le.Uint32(hdr[12:]))
	if hid+overflow >= c.hwm {
		return c.corrupt(id, stack, "id %d with %d overflow pages out of bounds (high-water mark %d)", hid, overflow, c.hwm)
	}
	for i := uint64(0); i <= overflow; i++ {
		if c.reachable[hid+i] {
			return c.corrupt(id, stack, "page %d referenced twice", hid+i)
		}
		c.reachable[hid+i] = true
	}
	if flags != branchPageFlag && flags != leafPageFlag {
		return c.corrupt(id, stack, "invalid page type %#x", flags)
	}
	n := int64(1+overflow) * c.pageSize
	if int64(id)*c.pageSize+n > c.size {
		return c.corrupt(id, stack, "%d bytes run past the end of the file", n)
	}
	buf := make([]byte, n)
	if _, err := c.f.ReadAt(buf, int64(id)*c.pageSize); err != nil {
		return err
	}
	if pageHeaderSize+count*elementSize > len(buf) {
		return c.corrupt(id, stack, "%d elements do not fit", count)
	}
	keys := make([][]byte, count)
	for i := range count {
		e := pageHeaderSize + i*elementSize
		var pos, ksize, vsize int
		if flags == branchPageFlag {
			pos, ksize = int(le.Uint32(buf[e:])), int(le.Uint32(buf[e+4:]))
		} else {
			pos, ksize, vsize = int(le.Uint32(buf[e+4:])), int(le.Uint32(buf[e+8:])), int(le.Uint32(buf[e+12:]))
		}
		if e+pos+ksize+vsize > len(buf) {
			return c.corrupt(id, stack, "element %d runs past the page", i)
		}
		k := buf[e+pos : e+pos+ksize]
		switch {
		case i == 0 && lower != nil && bytes.Compare(k, lower) < 0:
			return c.corrupt(id, stack, "first key %x below its parent's %x", k, lower)
		case i > 0 && bytes.Compare(k, keys[i-1]) <= 0:
			return c.corrupt(id, stack, "key %d (%x) not above the one before", i, k)
		case upper != nil && bytes.Compare(k, upper) >= 0:
			return c.corrupt(id, stack, "key %d (%x) not below its parent's next key %x", i, k, upper)
		}
		keys[i] = k
		if flags == leafPageFlag && le.Uint32(buf[e:])&bucketLeafFlag != 0 {
			if vsize < inBucketSize {
				return c.corrupt(id, stack, "bucket entry %d too short", i)
			}
			v := buf[e+pos+ksize:]
			*children = append(*children, le.Uint64(v))
		}
	}
	if flags == leafPageFlag {
		return nil
	}
	for i := range count {
		e := pageHeaderSize + i*elementSize
		next := upper
		if i+1 < count {
			next = keys[i+1]
		}
		if err := c.page(le.Uint64(buf[e+8:]), keys[i], next, append(stack, id), children); err != nil {
			return err
		}
	}
	return nil
}
