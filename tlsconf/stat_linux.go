//go:build linux

package tlsconf

import (
	"fmt"
	"os"
	"syscall"
)

// fileIdentity adds what a replacement that keeps size and modification
// time (cp -p, rsync -a, tar x) still changes: the inode (a rename puts a
// new one in place) and the status change time (set by every write and
// by utimes itself).
func fileIdentity(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf(":%d:%d.%d", st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
}
