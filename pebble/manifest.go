package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/atomicfs"

	"github.com/goethe-log/goethe/engine"
)

// pebble's MANIFEST is written in the LevelDB log format: 32 KiB blocks of
// chunks, each a 7-byte header (masked CRC-32C of type and payload,
// little-endian uint16 length, type byte 1-4: full, first, middle, last)
// and its payload.
const (
	logBlockSize  = 32 << 10
	logHeaderSize = 7

	chunkFull   = 1
	chunkFirst  = 2
	chunkMiddle = 3
	chunkLast   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is the LevelDB log format's masked CRC-32C.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// chunkAt reports whether an intact chunk starts at off, in the block that
// ends at blockEnd, and its type and payload length.
func chunkAt(data []byte, off, blockEnd int) (typ byte, n int, ok bool) {
	if off < 0 || off+logHeaderSize > blockEnd {
		return 0, 0, false
	}
	sum := binary.LittleEndian.Uint32(data[off : off+4])
	n = int(binary.LittleEndian.Uint16(data[off+4 : off+6]))
	typ = data[off+6]
	if typ < chunkFull || typ > chunkLast || off+logHeaderSize+n > blockEnd {
		return typ, n, false
	}
	return typ, n, maskedCRC(data[off+6:off+logHeaderSize+n]) == sum
}

func blockEndOf(off, size int) int {
	return min((off/logBlockSize+1)*logBlockSize, size)
}

// logScan is what scanLog found in a file in the log format.
type logScan struct {
	records int // complete, intact records before any damage
	damage  int // offset of the first chunk that is not intact; -1 if none
	// tailOnly: no intact chunk follows the damage, which is therefore what
	// a crash leaves at the end of the file being written.
	tailOnly bool
}

// scanLog walks the chunks of a file in the log format and reports where
// the first damage is and whether intact chunks follow it.
func scanLog(data []byte) logScan {
	s := logScan{damage: -1}
	inRecord := false
	pos := 0
	for pos < len(data) {
		blockEnd := blockEndOf(pos, len(data))
		if blockEnd-pos < logHeaderSize {
			pos = blockEnd // block padding, or a header cut short at the end
			continue
		}
		typ, n, ok := chunkAt(data, pos, blockEnd)
		if !ok {
			s.damage = pos
			break
		}
		switch typ {
		case chunkFull:
			inRecord = false
			s.records++
		case chunkFirst:
			inRecord = true
		case chunkLast:
			if inRecord {
				inRecord = false
				s.records++
			}
		}
		pos += logHeaderSize + n
	}
	if s.damage < 0 && !inRecord {
		return s
	}
	if s.damage < 0 {
		s.damage = len(data)
	}
	s.tailOnly = !intactChunkAfter(data, s.damage)
	return s
}

// intactChunkAfter reports whether an intact chunk starts after off: at any
// offset of off's block, or at the start of any later block.
func intactChunkAfter(data []byte, off int) bool {
	blockEnd := blockEndOf(off, len(data))
	for o := off + 1; o+logHeaderSize <= blockEnd; o++ {
		if _, _, ok := chunkAt(data, o, blockEnd); ok {
			return true
		}
	}
	for b := blockEnd; b < len(data); b += logBlockSize {
		if _, _, ok := chunkAt(data, b, blockEndOf(b, len(data))); ok {
			return true
		}
	}
	return false
}

// cutShort reports whether the damage at off is what an interrupted append
// leaves: the file ends inside the chunk at off (or inside its header), or
// nothing but zeroes follows off. A chunk complete in the file whose
// checksum fails is not: that is damage to an edit pebble had synced and
// acted on.
func cutShort(data []byte, off int) bool {
	if off+logHeaderSize > len(data) {
		return true
	}
	n := int(binary.LittleEndian.Uint16(data[off+4 : off+6]))
	if typ := data[off+6]; typ >= chunkFull && typ <= chunkLast && off+logHeaderSize+n > len(data) {
		return true
	}
	for _, b := range data[off:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// checkManifest verifies the current MANIFEST of the pebble folder dir
// before pebble reads it. pebble stops reading a MANIFEST at the first
// chunk it cannot read and opens with the versions before it, silently: 32
// damaged bytes in the first record open an empty store over a folder full
// of tables. checkManifest fails with an error wrapping engine.ErrCorrupted
// when the damage is followed by intact records (a hole, not a torn tail)
// or when no record at all is intact (every MANIFEST begins with a
// snapshot of the whole store, synced before it becomes current), or when
// the last record is complete but damaged. A torn tail (the file ends
// inside the last record, or zeroes follow it), what a crash while
// appending an edit leaves, is left to pebble, which ignores it as it
// should: pebble acts on an edit only once it is synced. A folder without a
// MANIFEST (a new store) passes.
func checkManifest(dir string) error {
	marker, name, err := atomicfs.LocateMarker(vfs.Default, dir, "manifest")
	if err != nil {
		return fmt.Errorf("locate the current MANIFEST: %w", err)
	}
	_ = marker.Close()
	if name == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: the current MANIFEST %s is missing", engine.ErrCorrupted, name)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	s := scanLog(data)
	switch {
	case s.damage >= 0 && !s.tailOnly:
		return fmt.Errorf("%w: %s is damaged at offset %d and intact records follow: pebble would drop every edit after the damage",
			engine.ErrCorrupted, name, s.damage)
	case s.damage >= 0 && !cutShort(data, s.damage):
		return fmt.Errorf("%w: the last record of %s is damaged at offset %d (not cut short by a crash): pebble would drop it, and the files it names",
			engine.ErrCorrupted, name, s.damage)
	case s.records == 0:
		return fmt.Errorf("%w: %s holds no intact record (%d bytes)", engine.ErrCorrupted, name, len(data))
	}
	return nil
}
