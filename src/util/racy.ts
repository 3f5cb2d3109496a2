// Telling a file's versions apart by stat() alone (size, mtime, ctime), as
// the reverse proxy's verified entries and the --rules file do, fails for a
// change made within the same tick of the file system's clock as the one
// before it: Linux stamps files with a coarse clock (up to 10 ms a tick;
// 6.13 and later stamp finely once a change was seen, but CI runners run
// older kernels), so size and times stay as they were. As git does for its
// racily clean index entries, a file looked at less than RACY_MS after its
// last change is taken as possibly changing again unseen: read it again
// next time.

/** How long after a change a file's stat() may not yet tell a later change apart. */
const RACY_MS = 100;

/** Did the file (last changed at ctimeMs, Unix ms) change so recently that a same-size change now could leave its stat() as it is? */
export function changedTooRecently(ctimeMs: number, now = Date.now()): boolean {
  return ctimeMs > now - RACY_MS;
}
