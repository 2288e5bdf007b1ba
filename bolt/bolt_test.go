package bolt_test

import (
	"testing"

	"github.com/goethe-log/goethe/bolt"
	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engine/enginetest"
)

func open(t *testing.T, dir string) (engine.Engine, error) {
	db, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		return nil, err
	}
	return db, nil
}

func TestConformance(t *testing.T) {
	enginetest.Run(t, open)
}

func TestCrossProcessLock(t *testing.T) {
	enginetest.RunCrossProcessLock(t, "TestCrossProcessLock", open)
}

func TestFullDisk(t *testing.T) {
	enginetest.RunFullDisk(t, open, enginetest.ResumeInPlace)
}
