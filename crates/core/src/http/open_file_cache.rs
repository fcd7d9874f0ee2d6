//! The open-file cache of a file server (nginx's `open_file_cache` is the
//! model): files already served, kept with their version (inode, size,
//! times) and either their bytes (small files) or an open descriptor, so
//! that the next request for the same path pays no path walk, open, stat or
//! close, and a small one no read either.
//!
//! A cached answer must never be stale, so every entry is tied to inotify
//! watches taken *before* the path was walked: one on each directory the
//! walk crossed (for the entry named next: created, deleted, renamed,
//! chmod'ed; and for the directory itself moving or going) and one on the
//! file's inode (written, truncated, chmod'ed, unlinked, whatever name was
//! used). inotify queues an event within the system call that makes a
//! change, so [`OpenFileCache::check`], called as a request is served,
//! sees every change made before the request was sent and drops the
//! entries it touches. A queue overflow drops everything.
//!
//! Only paths the kernel can walk one directory at a time without a
//! symlink, a mount crossing or a disk read are cached
//! ([`open_step`]): a symlink is where confinement could be lost later (a
//! link flipped to point out of the root); a path with one is served the
//! uncached way, opened with `RESOLVE_BENEATH` each time. Since the cached
//! path had no symlink, making it reach outside means changing one of the
//! watched directories, which drops the entry first.
//!
//! What inotify cannot see (writes through a shared `mmap`, a mount placed
//! over a served path, changes on another host of a network file system)
//! is caught by [`OpenFileCache::revalidate`], which the caller runs on an
//! entry older than its interval: the path opened again beneath the root
//! and compared by inode, size, mtime and ctime.
//!
//! One cache belongs to one thread (the JavaScript thread that serves);
//! it holds one inotify instance. The caller bounds it (entries, bytes,
//! descriptors) with [`OpenFileCache::forget`].

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::engine::{
    change_signals, change_signals_work, open_step, read_cached_whole, version_of, Change,
    ChangeWatch, Version, Watched,
};

/// A count that moves whenever any signalled cache of this process may have
/// a change queued ([`OpenFileCache::signalled`]): a caller that saw the
/// same count before may skip [`OpenFileCache::check`]. An atomic load.
pub fn change_count() -> u64 {
    change_signals()
}

/// An entry's number, unique for the cache's life (not reused).
pub type EntryId = u32;

/// A file the cache now holds.
#[derive(Debug)]
pub struct Cached {
    pub id: EntryId,
    pub version: Version,
    /// The whole file, when it was small enough and in the page cache; then
    /// no descriptor is kept.
    pub body: Option<Vec<u8>>,
    /// Otherwise the descriptor the cache keeps open (borrowed: see
    /// [`OpenFileCache::fd`]).
    pub fd: Option<RawFd>,
    /// No such file (ENOENT on the walk): kept as an answer too, until a
    /// name appears where the walk stopped (the directory's watch).
    pub missing: bool,
}

struct Entry {
    /// Shared with the responses using it (see [`OpenFileCache::file`]).
    fd: Option<Arc<OwnedFd>>,
    missing: bool,
    version: Version,
    /// The watches this entry depends on, with the directory entry's name
    /// for a directory's (None for the file's own).
    deps: Vec<(i32, Option<Box<[u8]>>)>,
}

/// Who depends on one watch.
#[derive(Default)]
struct Dependents {
    /// Entries that any event on the watch drops (the file's own watch).
    whole: HashSet<EntryId>,
    /// Entries that depend on one name in a watched directory.
    by_name: HashMap<Box<[u8]>, HashSet<EntryId>>,
    count: usize,
}

pub struct OpenFileCache {
    watch: ChangeWatch,
    entries: HashMap<EntryId, Entry>,
    dependents: HashMap<i32, Dependents>,
    next_id: EntryId,
    /// Entries dropped since the caller last took them ([`Self::take_dropped`]).
    dropped: Vec<EntryId>,
    /// The kernel signals this thread when a change is queued.
    signalled: bool,
    /// [`change_count`] when the queue was last read.
    seen: u64,
}

impl OpenFileCache {
    /// Fails where inotify is not available (then serve uncached).
    pub fn new() -> io::Result<OpenFileCache> {
        Ok(OpenFileCache {
            watch: ChangeWatch::new()?,
            entries: HashMap::new(),
            dependents: HashMap::new(),
            next_id: 1,
            dropped: Vec::new(),
            signalled: false,
            seen: 0,
        })
    }

    /// Has the kernel signal the calling thread for each change queued,
    /// so that [`Self::check`] reads the queue only after one (see
    /// `ChangeWatch::signal_changes` for why that is exact). Call on the
    /// thread that serves. False: every check reads the queue.
    pub fn signal_changes(&mut self) -> bool {
        self.signalled = self.watch.signal_changes();
        self.signalled
    }

    /// Whether changes are signalled (see [`Self::signal_changes`]).
    pub fn signalled(&self) -> bool {
        self.signalled
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every entry that a change queued since the last call touches.
    /// One system call when nothing changed; none when changes are
    /// signalled and no signal came. An error reading the queue
    /// drops everything (nothing can be trusted then).
    pub fn check(&mut self) {
        if self.signalled {
            let count = change_signals();
            if count == self.seen {
                return;
            }
            // Read before the queue: a change queued meanwhile moves it again.
            self.seen = count;
        }
        let mut hit: Vec<EntryId> = Vec::new();
        let mut all = false;
        let dependents = &self.dependents;
        let drained = self.watch.drain(&mut |change| match change {
            Change::Overflow => all = true,
            Change::Inode { wd, name, .. } => {
                let Some(d) = dependents.get(&wd) else { return };
                hit.extend(d.whole.iter().copied());
                if name.is_empty() {
                    // The inode itself: everything that depends on it.
                    for ids in d.by_name.values() {
                        hit.extend(ids.iter().copied());
                    }
                } else if let Some(ids) = d.by_name.get(name) {
                    hit.extend(ids.iter().copied());
                }
            }
        });
        if all || drained.is_err() {
            hit = self.entries.keys().copied().collect();
        }
        for id in hit {
            self.forget(id);
        }
    }

    /// Ids of the entries dropped (by a change, a failed revalidation or
    /// [`Self::forget`]) since the last call.
    pub fn take_dropped(&mut self) -> Vec<EntryId> {
        std::mem::take(&mut self.dropped)
    }

    /// Walks `rel` (a relative path, '/'-separated, without '.' or '..'
    /// parts) beneath the directory `root`, watching each directory before
    /// stepping into it, opens the file with `flags` and caches it: its
    /// bytes when it has at most `body_limit` and all are in the page
    /// cache, else its descriptor. A path missing on the way (ENOENT) is
    /// cached as missing when `missing_ok`. `Ok(None)`: not a path the cache
    /// takes (a symlink, a mount crossing, a lookup or read that would
    /// wait, not a regular file, changed while cached): serve it the usual
    /// way, which also reports the usual errors.
    pub fn open(
        &mut self,
        root: RawFd,
        rel: &[u8],
        flags: i32,
        body_limit: u64,
        missing_ok: bool,
    ) -> io::Result<Option<Cached>> {
        self.check();
        let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == b"." || *p == b"..")
        {
            return Ok(None);
        }
        let mut deps: Vec<(i32, Option<Box<[u8]>>)> = Vec::with_capacity(parts.len() + 1);
        let mut held: Option<OwnedFd> = None;
        let mut file: Option<OwnedFd> = None;
        // The lookup of the last name watched found nothing.
        let mut missing = false;
        let walked = (|| -> io::Result<()> {
            for (i, part) in parts.iter().enumerate() {
                let dir = held.as_ref().map_or(root, |d| d.as_raw_fd());
                deps.push((self.watch.watch(dir, Watched::Dir)?, Some((*part).into())));
                let name =
                    CString::new(*part).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                let step = if i + 1 < parts.len() {
                    open_step(dir, &name, libc::O_PATH | libc::O_DIRECTORY).map(|d| held = Some(d))
                } else {
                    open_step(dir, &name, flags).map(|f| file = Some(f))
                };
                if let Err(e) = step {
                    missing = e.raw_os_error() == Some(libc::ENOENT);
                    return Err(e);
                }
            }
            Ok(())
        })();
        let file = match (walked, file) {
            (Ok(()), Some(file)) => file,
            (Err(_), _) if missing && missing_ok => {
                // Watched up to the directory that lacks the name: a file
                // (or directory) appearing there drops the entry.
                let id = self.register(deps, None, Version::default(), true);
                return Ok(self.settled(id).then_some(Cached {
                    id,
                    version: Version::default(),
                    body: None,
                    fd: None,
                    missing: true,
                }));
            }
            _ => {
                self.unwatch_unused(&deps);
                return Ok(None);
            }
        };
        let version = match version_of(file.as_raw_fd()) {
            Ok(v) if v.mode & libc::S_IFMT == libc::S_IFREG => v,
            _ => {
                self.unwatch_unused(&deps);
                return Ok(None);
            }
        };
        match self.watch.watch(file.as_raw_fd(), Watched::File) {
            Ok(wd) => deps.push((wd, None)),
            Err(_) => {
                self.unwatch_unused(&deps);
                return Ok(None);
            }
        }
        let body = if version.size <= body_limit {
            read_cached_whole(file.as_raw_fd(), version.size)
                .ok()
                .flatten()
        } else {
            None
        };
        let fd = if body.is_some() {
            None
        } else {
            Some(Arc::new(file))
        };
        let raw = fd.as_ref().map(|f| f.as_raw_fd());
        let id = self.register(deps, fd, version, false);
        Ok(self.settled(id).then_some(Cached {
            id,
            version,
            body,
            fd: raw,
            missing: false,
        }))
    }

    /// Enters an entry that depends on `deps`.
    fn register(
        &mut self,
        deps: Vec<(i32, Option<Box<[u8]>>)>,
        fd: Option<Arc<OwnedFd>>,
        version: Version,
        missing: bool,
    ) -> EntryId {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        for (wd, name) in &deps {
            let d = self.dependents.entry(*wd).or_default();
            d.count += 1;
            match name {
                None => d.whole.insert(id),
                Some(n) => d.by_name.entry(n.clone()).or_default().insert(id),
            };
        }
        self.entries.insert(
            id,
            Entry {
                fd,
                missing,
                version,
                deps,
            },
        );
        id
    }

    /// Whether the entry just made survived the changes queued meanwhile
    /// (a change during the walk or the read: not this version); if not,
    /// it is gone and not reported as dropped.
    fn settled(&mut self, id: EntryId) -> bool {
        self.check();
        if self.entries.contains_key(&id) {
            return true;
        }
        self.dropped.retain(|d| *d != id);
        false
    }

    /// The descriptor entry `id` keeps, borrowed: valid until the entry is
    /// dropped, which only a call on this cache does.
    pub fn fd(&self, id: EntryId) -> Option<RawFd> {
        self.entries.get(&id)?.fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// A share of the descriptor entry `id` keeps: open for as long as any
    /// share lives, even after the entry is dropped. A response holds one
    /// instead of a duplicate, so that any number of responses of one file
    /// (clients that stopped reading, say) cost one descriptor between them.
    pub fn file(&self, id: EntryId) -> Option<Arc<OwnedFd>> {
        self.entries.get(&id)?.fd.clone()
    }

    /// Whether entry `id` is still what `rel` beneath `root` names: the
    /// path opened again (confined, without symlinks) and compared by
    /// inode, size, mode, mtime and ctime. Drops it when not. Also checks,
    /// when changes are signalled, that they still are (see
    /// [`Self::signalled`]; if not, drops everything).
    pub fn revalidate(&mut self, id: EntryId, root: RawFd, rel: &CStr) -> bool {
        if self.signalled && !change_signals_work() {
            // Our handler was replaced (or SIGURG blocked): from now on the
            // queue is read before every answer, and nothing kept in the
            // meantime is trusted.
            self.signalled = false;
            let all: Vec<EntryId> = self.entries.keys().copied().collect();
            for e in all {
                self.forget(e);
            }
        }
        self.check();
        let Some(e) = self.entries.get(&id) else {
            return false;
        };
        let now = open_step(root, rel, libc::O_PATH).and_then(|f| version_of(f.as_raw_fd()));
        let same = match now {
            Ok(v) => !e.missing && v == e.version,
            Err(err) => e.missing && err.raw_os_error() == Some(libc::ENOENT),
        };
        if !same {
            self.forget(id);
        }
        same
    }

    /// Drops entry `id` (closing its descriptor, releasing its watches).
    pub fn forget(&mut self, id: EntryId) {
        let Some(e) = self.entries.remove(&id) else {
            return;
        };
        for (wd, name) in &e.deps {
            if let Some(d) = self.dependents.get_mut(wd) {
                match name {
                    None => {
                        d.whole.remove(&id);
                    }
                    Some(n) => {
                        if let Some(ids) = d.by_name.get_mut(n) {
                            ids.remove(&id);
                            if ids.is_empty() {
                                d.by_name.remove(n);
                            }
                        }
                    }
                }
            }
        }
        self.release_watches(&e.deps);
        self.dropped.push(id);
    }

    /// One use less of each watch; a watch no entry uses is removed.
    fn release_watches(&mut self, deps: &[(i32, Option<Box<[u8]>>)]) {
        for (wd, _) in deps {
            if let Some(d) = self.dependents.get_mut(wd) {
                d.count = d.count.saturating_sub(1);
                if d.count == 0 {
                    self.dependents.remove(wd);
                    self.watch.unwatch(*wd);
                }
            }
        }
    }

    /// Removes the watches a failed walk took that no entry uses (a watch
    /// an entry already had is the same `wd`, and stays).
    fn unwatch_unused(&mut self, deps: &[(i32, Option<Box<[u8]>>)]) {
        for (wd, _) in deps {
            if !self.dependents.contains_key(wd) {
                self.watch.unwatch(*wd);
            }
        }
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn dir() -> (std::path::PathBuf, std::fs::File) {
        let base = std::env::temp_dir().join(format!(
            "uring-fs-ofc-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(base.join("sub")).expect("mkdir");
        let fd = std::fs::File::open(&base).expect("open root");
        (base, fd)
    }

    fn open(c: &mut OpenFileCache, root: &std::fs::File, rel: &str) -> Option<Cached> {
        c.open(
            root.as_raw_fd(),
            rel.as_bytes(),
            libc::O_RDONLY,
            1 << 20,
            false,
        )
        .expect("open")
    }

    #[test]
    fn caches_bytes_and_drops_on_every_kind_of_change() {
        let (base, root) = dir();
        let mut c = OpenFileCache::new().expect("inotify");
        let file = base.join("sub/a.txt");
        type Change = Box<dyn Fn(&std::path::Path)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "write",
                Box::new(|p| std::fs::write(p, b"other").expect("write")),
            ),
            (
                "truncate",
                Box::new(|p| {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(p)
                        .expect("open")
                        .set_len(1)
                        .expect("trunc")
                }),
            ),
            (
                "chmod",
                Box::new(|p| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
                        .expect("chmod")
                }),
            ),
            (
                "rename over",
                Box::new(|p| {
                    let t = p.with_extension("tmp");
                    std::fs::write(&t, b"new").expect("write");
                    std::fs::rename(&t, p).expect("rename")
                }),
            ),
            (
                "unlink",
                Box::new(|p| std::fs::remove_file(p).expect("unlink")),
            ),
            (
                "rename dir",
                Box::new(|p| {
                    let sub = p.parent().expect("parent");
                    std::fs::rename(sub, sub.with_extension("old")).expect("rename");
                    std::fs::rename(sub.with_extension("old"), sub).expect("rename back")
                }),
            ),
        ];
        for (what, change) in changes {
            std::fs::write(&file, b"hello").expect("write");
            let got = open(&mut c, &root, "sub/a.txt").expect("cached");
            assert_eq!(got.body.as_deref(), Some(&b"hello"[..]), "{what}");
            c.check();
            assert!(c.take_dropped().is_empty(), "{what}: nothing changed yet");
            change(&file);
            c.check();
            assert_eq!(c.take_dropped(), vec![got.id], "{what}");
            assert!(c.is_empty(), "{what}");
        }
        std::fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn signalled_changes_are_seen_without_reading_the_queue() {
        let (base, root) = dir();
        let mut c = OpenFileCache::new().expect("inotify");
        if !c.signal_changes() {
            // SIGURG taken or blocked on this test thread: nothing to test.
            return;
        }
        let file = base.join("sub/s.txt");
        std::fs::write(&file, b"one").expect("write");
        let got = open(&mut c, &root, "sub/s.txt").expect("cached");
        let before = change_count();
        c.check();
        assert!(c.take_dropped().is_empty());
        std::fs::write(&file, b"two").expect("write");
        // The write's own return to user space ran the handler.
        assert!(change_count() > before, "the change was signalled");
        c.check();
        assert_eq!(c.take_dropped(), vec![got.id]);
        std::fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn a_missing_path_is_kept_until_its_name_appears() {
        let (base, root) = dir();
        let mut c = OpenFileCache::new().expect("inotify");
        for (rel, make) in [("sub/new.txt", "sub/new.txt"), ("later/x.txt", "later")] {
            // A lookup of the kernel's caches only: a name never looked up
            // has no negative entry there yet (EAGAIN, not cached).
            assert!(std::fs::metadata(base.join(rel)).is_err());
            let got = c
                .open(
                    root.as_raw_fd(),
                    rel.as_bytes(),
                    libc::O_RDONLY,
                    1 << 20,
                    true,
                )
                .expect("open")
                .expect("cached as missing");
            assert!(got.missing, "{rel}");
            let crel = CString::new(rel).expect("path");
            assert!(
                c.revalidate(got.id, root.as_raw_fd(), &crel),
                "{rel}: still missing"
            );
            c.check();
            assert!(c.take_dropped().is_empty(), "{rel}");
            if make.ends_with(".txt") {
                std::fs::write(base.join(make), b"now").expect("write");
            } else {
                std::fs::create_dir(base.join(make)).expect("mkdir");
            }
            c.check();
            assert_eq!(c.take_dropped(), vec![got.id], "{rel}: its name appeared");
        }
        std::fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn refuses_symlinks_and_keeps_large_files_open() {
        let (base, root) = dir();
        let mut c = OpenFileCache::new().expect("inotify");
        std::fs::write(base.join("sub/big"), vec![7u8; 4096]).expect("write");
        std::os::unix::fs::symlink("sub", base.join("link")).expect("symlink");
        assert!(open(&mut c, &root, "link/big").is_none());
        assert!(open(&mut c, &root, "sub/../sub/big").is_none());
        assert!(open(&mut c, &root, "sub").is_none(), "a directory");
        assert!(open(&mut c, &root, "missing").is_none());
        let big = c
            .open(root.as_raw_fd(), b"sub/big", libc::O_RDONLY, 100, false)
            .expect("open")
            .expect("cached");
        assert!(big.body.is_none());
        assert_eq!(c.fd(big.id), big.fd);
        // A share outlives the entry: still the file once it is forgotten.
        let share = c.file(big.id).expect("a share");
        let names = |fd: i32| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
        let big_path = base.join("sub/big");
        assert_eq!(names(share.as_raw_fd()), Some(big_path.clone()));
        assert_eq!(big.version.size, 4096);
        let rel = CString::new("sub/big").expect("path");
        assert!(c.revalidate(big.id, root.as_raw_fd(), &rel));
        c.forget(big.id);
        assert_eq!(c.take_dropped(), vec![big.id]);
        assert!(c.file(big.id).is_none());
        assert_eq!(
            names(share.as_raw_fd()),
            Some(big_path),
            "the share is still the file"
        );
        drop(share);
        assert!(!c.revalidate(big.id, root.as_raw_fd(), &rel));
        assert!(c.dependents.is_empty(), "every watch released");
        std::fs::remove_dir_all(&base).ok();
    }
}
