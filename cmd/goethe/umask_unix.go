//go:build unix

package main

import "syscall"

// restrictFileModes sets the process's umask to 077, so that every file
// and folder goethe and its engines create is its owner's alone (0600 and
// 0700): the engines choose their own modes (goleveldb and pebble 0644 for
// data files, bbolt the mode it is given), and the umask is the one place
// that covers all of them, and files they add in later versions. It is
// idempotent.
func restrictFileModes() { syscall.Umask(privateUmask) }
