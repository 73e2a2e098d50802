// Package web holds the embedded web UI. It is served by the api package at
// "/" from files compiled into the binary: no CDN, no build step.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS returns the UI's files rooted at the static directory.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the directory is embedded at compile time
	}
	return sub
}
