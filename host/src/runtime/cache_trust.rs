//! Whether the folder of compiled components, and a file in it, may be trusted.
//!
//! A compiled component is native code that wasmtime runs inside the host, so whoever can write
//! a `.cwasm` into the cache runs code as the host. The cache is therefore used only when no one
//! else can write it, checked the way OpenSSH's `StrictModes` checks a key and its folder:
//!
//! - the folder (symbolic links followed, as for `~/.cache`) is a directory owned by this
//!   process's user or by root, and not writable by group or others;
//! - the file is a regular file (never a symbolic link) with the same owner rule and not
//!   writable by group or others; it is read through the handle that was checked, and refused if
//!   that handle is not the file the path named when checked.
//!
//! The folders above the cache folder are not checked (nor does OpenSSH): whoever can replace
//! the cache folder itself can already replace the host's own binary or home directory.
//!
//! This module also creates the folder (0700) and writes files (0600, atomically) so that what
//! the cache stores passes its own check. Std only; the check needs Unix permissions, so
//! elsewhere the cache is never trusted.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why the cache (folder or file) is not used: one line naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted(pub String);

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`check_dir`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum DirState {
    /// The folder exists and no one else can write it.
    Trusted,
    /// There is no folder (yet).
    Missing,
}

/// Checks the cache folder `dir`: a directory owned by this user or root, not writable by
/// group or others.
pub fn check_dir(dir: &Path) -> Result<DirState, Untrusted> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DirState::Missing),
        Err(e) => return Err(Untrusted(format!("cannot check {}: {e}", dir.display()))),
    };
    if !meta.is_dir() {
        return Err(Untrusted(format!("{} is not a directory", dir.display())));
    }
    imp::check_owner_and_mode(&meta, "the folder", dir)?;
    Ok(DirState::Trusted)
}

/// Reads the compiled component at `path` (inside a folder [`check_dir`] trusted) if it is
/// there and no one else can write it; `Ok(None)` when there is no such file.
pub fn read_file(path: &Path) -> Result<Option<Vec<u8>>, Untrusted> {
    imp::read_file(path)
}

/// Creates the cache folder (and any missing parents) readable and writable by this user only.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    imp::create_dir(dir)
}

/// Writes `bytes` to `dest` atomically: into a new file readable and writable by this user only,
/// then renamed over `dest`.
pub fn write_file(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dest.with_extension(format!("tmp{}-{n}", std::process::id()));
    // A leftover of a process that had the same id and died mid-write.
    let _ = std::fs::remove_file(&tmp);
    let result = imp::write_new(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, dest));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Logs one warning line naming the folder and what is wrong, once per folder per process (a
/// `serve` with many components, or the same folder seen again, warns once).
pub fn warn_once(dir: &Path, why: &Untrusted) {
    if first_time(dir) {
        tracing::warn!(
            "not using the compiled-component cache {}: {why}; compiling in memory (the cache \
             folder and its files must be owned by this user or root and writable by no one else)",
            dir.display()
        );
    } else {
        tracing::debug!(cache = %dir.display(), "not using the compiled-component cache: {why}");
    }
}

fn first_time(dir: &Path) -> bool {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static WARNED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_owned())
}

#[cfg(unix)]
mod imp {
    use super::Untrusted;
    use std::fs::Metadata;
    use std::io::{self, Read as _, Write as _};
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
    use std::path::Path;
    use std::sync::OnceLock;

    /// Owned by this user or root, and no write bit for group or others.
    pub fn check_owner_and_mode(meta: &Metadata, what: &str, path: &Path) -> Result<(), Untrusted> {
        let me = effective_uid()
            .ok_or_else(|| Untrusted("cannot tell which user this process runs as".to_string()))?;
        let owner = meta.uid();
        if owner != me && owner != 0 {
            return Err(Untrusted(format!(
                "{what} {} is owned by uid {owner}, not by this user (uid {me}) or root",
                path.display()
            )));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(Untrusted(format!(
                "{what} {} is writable by group or others (mode {mode:04o})",
                path.display()
            )));
        }
        Ok(())
    }

    pub fn read_file(path: &Path) -> Result<Option<Vec<u8>>, Untrusted> {
        let cannot = |e: io::Error| Untrusted(format!("cannot read {}: {e}", path.display()));
        // The path itself, not what a link points to; nothing is opened before it is known to
        // be a regular file (opening a FIFO would block).
        let before = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cannot(e)),
        };
        if before.file_type().is_symlink() {
            return Err(Untrusted(format!(
                "the file {} is a symbolic link",
                path.display()
            )));
        }
        if !before.is_file() {
            return Err(Untrusted(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        check_owner_and_mode(&before, "the file", path)?;
        let mut file = std::fs::File::open(path).map_err(cannot)?;
        // What was opened is what was checked: a file swapped in between (for a link, say) has
        // another device or inode.
        let opened = file.metadata().map_err(cannot)?;
        if (opened.dev(), opened.ino()) != (before.dev(), before.ino()) {
            return Err(Untrusted(format!(
                "the file {} changed while it was being opened",
                path.display()
            )));
        }
        check_owner_and_mode(&opened, "the file", path)?;
        let mut bytes = Vec::with_capacity(opened.len().try_into().unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(cannot)?;
        Ok(Some(bytes))
    }

    pub fn create_dir(dir: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }

    pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(bytes)
    }

    /// This process's effective user id (the owner of the files it creates), from
    /// `/proc/self/status` where there is one, else from a file it creates in the temporary
    /// folder. Std has no `geteuid`.
    pub fn effective_uid() -> Option<u32> {
        static UID: OnceLock<Option<u32>> = OnceLock::new();
        *UID.get_or_init(|| from_proc().or_else(from_new_file))
    }

    fn from_proc() -> Option<u32> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        parse_status_uid(&status)
    }

    /// The effective uid: the second number of the `Uid:` line (real, effective, saved, fs).
    pub fn parse_status_uid(status: &str) -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    fn from_new_file() -> Option<u32> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!(".wasm-secrets-uid-{}-{nanos}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .ok()?;
        let uid = file.metadata().ok().map(|m| m.uid());
        let _ = std::fs::remove_file(&path);
        uid
    }
}

#[cfg(not(unix))]
mod imp {
    use super::Untrusted;
    use std::fs::Metadata;
    use std::io;
    use std::path::Path;

    fn unknown(path: &Path) -> Untrusted {
        Untrusted(format!(
            "cannot check who may write {} on this platform",
            path.display()
        ))
    }

    pub fn check_owner_and_mode(_: &Metadata, _: &str, path: &Path) -> Result<(), Untrusted> {
        Err(unknown(path))
    }

    pub fn read_file(path: &Path) -> Result<Option<Vec<u8>>, Untrusted> {
        Err(unknown(path))
    }

    pub fn create_dir(dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
        std::fs::write(path, bytes)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    const OTHER_UID: u32 = 4242;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn me() -> u32 {
        imp::effective_uid().unwrap()
    }

    /// A private folder holding one private file, as the cache writes them.
    fn private_cache() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.cwasm");
        write_file(&file, b"compiled").unwrap();
        (dir, file)
    }

    fn reason(r: Result<impl fmt::Debug, Untrusted>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn the_effective_uid_is_the_owner_of_new_files() {
        let (_dir, file) = private_cache();
        assert_eq!(std::fs::metadata(file).unwrap().uid(), me());
        assert_eq!(
            imp::parse_status_uid("Name:\tx\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\n"),
            Some(1001)
        );
        assert_eq!(imp::parse_status_uid("Name:\tx\n"), None);
    }

    #[test]
    fn a_private_folder_and_file_are_trusted() {
        let (dir, file) = private_cache();
        assert_eq!(check_dir(dir.path()), Ok(DirState::Trusted));
        assert_eq!(read_file(&file), Ok(Some(b"compiled".to_vec())));
        assert_eq!(read_file(&dir.path().join("absent.cwasm")), Ok(None));
        assert_eq!(check_dir(&dir.path().join("absent")), Ok(DirState::Missing));
    }

    #[test]
    fn what_the_cache_creates_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("a/b");
        create_dir(&cache).unwrap();
        write_file(&cache.join("x.cwasm"), b"1").unwrap();
        write_file(&cache.join("x.cwasm"), b"2").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&cache), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&cache.join("x.cwasm")), 0o600);
        let names: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
        assert_eq!(std::fs::read(cache.join("x.cwasm")).unwrap(), b"2");
    }

    #[test]
    fn a_folder_readable_by_all_but_writable_by_none_else_is_trusted() {
        // As in the container image: root's, readable by all, writable by none but root.
        let (dir, file) = private_cache();
        chmod(dir.path(), 0o755);
        chmod(&file, 0o444);
        assert_eq!(check_dir(dir.path()), Ok(DirState::Trusted));
        assert!(read_file(&file).unwrap().is_some());
    }

    #[test]
    fn a_folder_writable_by_group_or_others_is_not() {
        let (dir, file) = private_cache();
        for mode in [0o770, 0o720, 0o707, 0o777, 0o1777] {
            chmod(dir.path(), mode);
            let why = reason(check_dir(dir.path()));
            assert!(why.contains("writable by group or others"), "{why}");
            assert!(why.contains(&dir.path().display().to_string()), "{why}");
        }
        chmod(dir.path(), 0o700);
        chmod(&file, 0o620);
        let why = reason(read_file(&file));
        assert!(
            why.contains("the file") && why.contains("mode 0620"),
            "{why}"
        );
    }

    #[test]
    fn a_folder_or_file_owned_by_another_user_is_not() {
        if me() != 0 {
            eprintln!("skipped: only root can give a file to another user");
            return;
        }
        let (dir, file) = private_cache();
        std::os::unix::fs::chown(&file, Some(OTHER_UID), None).unwrap();
        let why = reason(read_file(&file));
        assert!(why.contains(&format!("owned by uid {OTHER_UID}")), "{why}");
        std::os::unix::fs::chown(dir.path(), Some(OTHER_UID), None).unwrap();
        let why = reason(check_dir(dir.path()));
        assert!(why.contains("the folder"), "{why}");
    }

    #[test]
    fn a_symlinked_file_is_not_followed() {
        let (dir, file) = private_cache();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("real.cwasm");
        std::fs::rename(&file, &target).unwrap();
        std::os::unix::fs::symlink(&target, &file).unwrap();
        let why = reason(read_file(&file));
        assert!(why.contains("symbolic link"), "{why}");
        // A link to a folder is not a regular file either.
        let sub = dir.path().join("d.cwasm");
        std::os::unix::fs::symlink(elsewhere.path(), &sub).unwrap();
        assert!(read_file(&sub).is_err());
    }

    #[test]
    fn a_fifo_is_refused_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.cwasm");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no mkfifo");
            return;
        }
        let why = reason(read_file(&fifo));
        assert!(why.contains("not a regular file"), "{why}");
    }

    #[test]
    fn a_file_in_place_of_the_folder_is_not_trusted() {
        let (_dir, file) = private_cache();
        let why = reason(check_dir(&file));
        assert!(why.contains("not a directory"), "{why}");
    }

    #[test]
    fn the_warning_is_logged_once_per_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(first_time(dir.path()));
        assert!(!first_time(dir.path()));
    }
}
