package leveldb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// The goleveldb journal format (leveldb's log format), shared by the
// journal (*.log) and the MANIFEST: 32 KiB blocks of chunks, each a 7-byte
// header (masked CRC-32C of type and payload, little-endian uint16 length,
// type byte) and its payload; a block's last < 7 bytes are zero padding.
const (
	journalBlockSize  = 32 << 10
	journalHeaderSize = 7

	chunkFull   = 1
	chunkFirst  = 2
	chunkMiddle = 3
	chunkLast   = 4
)

// journalScan is what scanJournal found in one journal file.
type journalScan struct {
	// goodEnd is the offset just past the last complete, intact record.
	goodEnd int
	// damage is the offset of the first chunk that is not intact, or of the
	// start of a record the file ends in the middle of; -1 if none.
	damage int
	// reason says what is wrong at damage.
	reason string
	// tailOnly reports that no intact chunk follows damage: the damage is
	// what a crash leaves at the end of the file being written (a record cut
	// short, zeroes or garbage past the last write), not a hole in the log.
	tailOnly bool
}

// chunkAt reports whether an intact chunk starts at off, whose block ends at
// blockEnd, and its type and payload length. A length that overflows the
// block is not intact.
func chunkAt(data []byte, off, blockEnd int) (typ byte, n int, ok bool) {
	if off < 0 || off+journalHeaderSize > blockEnd {
		return 0, 0, false
	}
	sum := binary.LittleEndian.Uint32(data[off : off+4])
	n = int(binary.LittleEndian.Uint16(data[off+4 : off+6]))
	typ = data[off+6]
	if typ < chunkFull || typ > chunkLast || off+journalHeaderSize+n > blockEnd {
		return typ, n, false
	}
	return typ, n, util.NewCRC(data[off+6:off+journalHeaderSize+n]).Value() == sum
}

func blockEndOf(off, size int) int {
	return min((off/journalBlockSize+1)*journalBlockSize, size)
}

// scanJournal walks the chunks of a journal file as goleveldb's strict
// reader does and says where the intact records end and whether anything
// intact follows the first damage.
func scanJournal(data []byte) journalScan {
	s := journalScan{damage: -1}
	inRecord, recordStart := false, 0
	pos := 0
	for pos < len(data) {
		blockEnd := blockEndOf(pos, len(data))
		if blockEnd-pos < journalHeaderSize {
			// Block padding, or a header cut short at the end of the
			// file: either way no chunk starts here.
			pos = blockEnd
			continue
		}
		typ, n, ok := chunkAt(data, pos, blockEnd)
		if !ok {
			s.damage, s.reason = pos, describeBadChunk(data, pos, blockEnd)
			break
		}
		switch typ {
		case chunkFull:
			inRecord = false
			s.goodEnd = pos + journalHeaderSize + n
		case chunkFirst:
			inRecord, recordStart = true, pos
		case chunkMiddle:
			// An orphan middle chunk is skipped by goleveldb too.
		case chunkLast:
			if inRecord {
				inRecord = false
				s.goodEnd = pos + journalHeaderSize + n
			}
		}
		pos += journalHeaderSize + n
	}
	bad := pos // the first chunk that is not intact, or the end of the file
	if s.damage < 0 && inRecord {
		s.damage, s.reason = recordStart, "the file ends inside a record"
	}
	if s.damage < 0 {
		return s
	}
	if inRecord {
		// A record begun before the damage is lost with it.
		s.damage = min(s.damage, recordStart)
	}
	s.tailOnly = !intactChunkAfter(data, bad)
	return s
}

// describeBadChunk says why the chunk at off is not intact.
func describeBadChunk(data []byte, off, blockEnd int) string {
	if off+journalHeaderSize > len(data) {
		return "header cut short"
	}
	n := int(binary.LittleEndian.Uint16(data[off+4 : off+6]))
	typ := data[off+6]
	switch {
	case typ == 0 && n == 0 && binary.LittleEndian.Uint32(data[off:off+4]) == 0:
		return "zero header"
	case typ < chunkFull || typ > chunkLast:
		return fmt.Sprintf("invalid chunk type %#x", typ)
	case off+journalHeaderSize+n > len(data):
		return "record cut short by the end of the file"
	case off+journalHeaderSize+n > blockEnd:
		return "chunk length overflows its block"
	}
	return "checksum mismatch"
}

// intactChunkAfter reports whether an intact chunk starts anywhere after
// off: at any offset of off's own block (the damaged chunk's length cannot
// be trusted to find the next one), or at the start of any later block
// (where a chunk always starts).
func intactChunkAfter(data []byte, off int) bool {
	blockEnd := blockEndOf(off, len(data))
	for o := off + 1; o+journalHeaderSize <= blockEnd; o++ {
		if _, _, ok := chunkAt(data, o, blockEnd); ok {
			return true
		}
	}
	for b := blockEnd; b < len(data); b += journalBlockSize {
		if _, _, ok := chunkAt(data, b, blockEndOf(b, len(data))); ok {
			return true
		}
	}
	return false
}

// tornSuffix names the file beside a journal or MANIFEST that keeps the
// torn tail Open cut from it (the latest one only).
const tornSuffix = ".torn"

// repairTornTail handles the error of a strict open. If it is damage in the
// newest journal or in the current MANIFEST, and the damage is only a torn
// tail (nothing intact after it), it cuts the file after its last intact
// record, logs what it dropped, and reports true: the caller opens again.
// Any other damage is left alone and reported false.
func repairTornTail(dir string, openErr error, log *slog.Logger) (bool, error) {
	var cerr *lerrors.ErrCorrupted
	if !errors.As(openErr, &cerr) {
		return false, nil
	}
	var name string
	switch cerr.Fd.Type {
	case storage.TypeJournal:
		newest, err := newestJournal(dir)
		if err != nil || newest != cerr.Fd.Num {
			return false, err
		}
		name = fmt.Sprintf("%06d.log", cerr.Fd.Num)
	case storage.TypeManifest:
		name = fmt.Sprintf("MANIFEST-%06d", cerr.Fd.Num)
		current, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
		if err != nil || strings.TrimSpace(string(current)) != name {
			return false, nil
		}
	default:
		return false, nil
	}
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", name, err)
	}
	s := scanJournal(data)
	if s.damage < 0 || !s.tailOnly {
		return false, nil
	}
	if cerr.Fd.Type == storage.TypeManifest && s.goodEnd == 0 {
		// A MANIFEST starts with a snapshot of the whole version; without
		// it there is nothing to open.
		return false, nil
	}
	// The dropped bytes are kept beside the file, under a name goleveldb
	// does not parse, for whoever investigates.
	if err := os.WriteFile(path+tornSuffix, data[s.goodEnd:], 0o600); err != nil {
		return false, fmt.Errorf("save the torn tail of %s: %w", name, err)
	}
	if err := os.Truncate(path, int64(s.goodEnd)); err != nil {
		return false, fmt.Errorf("cut the torn tail of %s: %w", name, err)
	}
	log.Warn("leveldb: dropped the torn tail a crash left at the end of the newest log; every record before it is intact",
		"file", name, "damage_at", s.damage, "reason", s.reason,
		"kept_bytes", s.goodEnd, "dropped_bytes", len(data)-s.goodEnd, "saved_as", name+tornSuffix)
	return true, nil
}

// newestJournal returns the highest journal file number in dir.
func newestJournal(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", filepath.Base(dir), err)
	}
	newest := int64(-1)
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(num, 10, 64); err == nil && n > newest {
			newest = n
		}
	}
	return newest, nil
}
