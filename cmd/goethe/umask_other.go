//go:build !unix

package main

// restrictFileModes does nothing where there is no umask: the folder's
// access control list decides who reads the data.
func restrictFileModes() {}
