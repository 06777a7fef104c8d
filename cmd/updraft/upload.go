package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

// uploadFile is a local file opened to be streamed to the server.
type uploadFile struct {
	*os.File
	size int64
	name string // base name, as the server records it
	bar  *progressbar.ProgressBar
}

// openUpload opens the file at path for an upload and refuses a directory;
// verb says what the command does with a file ("upload", "put").
func openUpload(path, verb string) (*uploadFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory: %s a file", path, verb)
	}
	return &uploadFile{File: f, size: st.Size(), name: filepath.Base(path)}, nil
}

// progress starts a progress bar on a terminal's stderr and returns the
// upload options that drive it (none when stderr is not a terminal).
func (u *uploadFile) progress(cmd *cobra.Command) []client.UploadOption {
	u.bar = newProgressBar(cmd, u.size, "uploading "+u.name)
	if u.bar == nil {
		return nil
	}
	bar := u.bar
	return []client.UploadOption{client.OnProgress(func(n int64) { _ = bar.Set64(n) })}
}

// Close ends the progress bar, if any, and closes the file.
func (u *uploadFile) Close() error {
	if u.bar != nil {
		_ = u.bar.Exit()
	}
	return u.File.Close()
}
