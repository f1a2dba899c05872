//! The compiled-component cache is native code the host runs: `run` loads it only from a folder
//! and a file no one else can write, and otherwise compiles in memory, warns once, and stores
//! nothing. Observed through the binary: `loaded compiled component from cache` at debug level
//! is a hit; the warning line names the folder and what is wrong.

use crate::harness::{cli, guest, run_cli, temp_file};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

const HIT: &str = "loaded compiled component from cache";
const WARNING: &str = "not using the compiled-component cache";
/// Another user, for the files tests give away (tests run as root).
const OTHER_UID: u32 = 4242;
/// The image's user (deploy/Dockerfile's USER).
const NONROOT_UID: u32 = 65532;

fn secrets_file() -> tempfile::NamedTempFile {
    let f = temp_file(".toml", b"db-password = \"pw-from-file\"\n");
    chmod(f.path(), 0o644);
    f
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `wasm-secrets run secrets-get db-password` with `cache` as the cache folder, logging at
/// debug level; it must work whatever the cache is like.
fn run_with_cache(cache: &Path, secrets: &Path) -> crate::harness::Run {
    let r = run_cli(
        cli()
            .env("WASM_SECRETS_CACHE_DIR", cache)
            .env("WASM_SECRETS_LOG", "debug")
            .args(["run", "--secrets-file"])
            .arg(secrets)
            .args(["--grant", "db-password"])
            .arg(guest("secrets-get"))
            .arg("db-password"),
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "db-password=pw-from-file\n"),
        "{}",
        r.stderr
    );
    r
}

/// Whether this process runs as root (the owner of what it creates).
fn running_as_root() -> bool {
    let probe = tempfile::tempfile().unwrap();
    probe.metadata().unwrap().uid() == 0
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    all
}

/// The one warning line, naming the folder and containing `what`.
fn assert_warned_once(stderr: &str, cache: &Path, what: &str) {
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(WARNING)).collect();
    assert_eq!(warnings.len(), 1, "one warning line: {stderr}");
    assert!(
        warnings[0].contains(&cache.display().to_string()) && warnings[0].contains(what),
        "the warning names the folder and says `{what}`: {}",
        warnings[0]
    );
    assert!(!stderr.contains(HIT), "{stderr}");
}

/// A private cache folder holding secrets-get compiled by a first run.
fn populated_cache(secrets: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let first = run_with_cache(dir.path(), secrets);
    assert!(!first.stderr.contains(HIT), "{}", first.stderr);
    let files = entries(dir.path());
    assert_eq!(
        files.len(),
        1,
        "the first run stored one compiled component"
    );
    let file = files[0].clone();
    (dir, file)
}

#[test]
fn a_private_cache_folder_is_created_private_and_hit_on_the_second_run() {
    let s = secrets_file();
    let parent = tempfile::tempdir().unwrap();
    let cache = parent.path().join("new").join("cache");
    let first = run_with_cache(&cache, s.path());
    assert!(!first.stderr.contains(HIT), "{}", first.stderr);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700, "the folder is created private");
    let files = entries(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600, "the file is written private");
    let second = run_with_cache(&cache, s.path());
    assert!(second.stderr.contains(HIT), "{}", second.stderr);
    assert!(!second.stderr.contains(WARNING), "{}", second.stderr);
    assert_eq!(entries(&cache), files);
}

#[test]
fn a_folder_writable_by_group_or_others_is_not_used() {
    let s = secrets_file();
    for mode in [0o770, 0o777] {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), mode);
        for _ in 0..2 {
            let r = run_with_cache(dir.path(), s.path());
            assert_warned_once(&r.stderr, dir.path(), "writable by group or others");
            assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "nothing stored");
        }
    }
}

#[test]
fn a_compiled_file_owned_by_another_user_is_not_loaded() {
    if !running_as_root() {
        eprintln!("skipped: only root can give a file to another user");
        return;
    }
    let s = secrets_file();
    let (dir, file) = populated_cache(s.path());
    std::os::unix::fs::chown(&file, Some(OTHER_UID), None).unwrap();
    let before = std::fs::metadata(&file).unwrap();
    let r = run_with_cache(dir.path(), s.path());
    assert_warned_once(&r.stderr, dir.path(), &format!("owned by uid {OTHER_UID}"));
    assert_eq!(entries(dir.path()), vec![file.clone()], "nothing stored");
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(
        (after.ino(), after.uid(), after.mtime_nsec()),
        (before.ino(), OTHER_UID, before.mtime_nsec()),
        "the other user's file is left as it was"
    );
}

#[test]
fn a_symlinked_compiled_file_is_not_followed() {
    let s = secrets_file();
    let (dir, file) = populated_cache(s.path());
    // A good compiled component, private, but elsewhere: the link alone disqualifies it.
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.cwasm");
    std::fs::rename(&file, &target).unwrap();
    std::os::unix::fs::symlink(&target, &file).unwrap();
    let r = run_with_cache(dir.path(), s.path());
    assert_warned_once(&r.stderr, dir.path(), "symbolic link");
    assert_eq!(entries(dir.path()), vec![file.clone()], "nothing stored");
    assert!(
        std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is left as it was"
    );
}

#[test]
fn compile_refuses_a_folder_others_can_write() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o777);
    let r = run_cli(
        cli()
            .env("WASM_SECRETS_CACHE_DIR", dir.path())
            .arg("compile")
            .arg(guest("secrets-get")),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("writable by group or others")
            && r.stderr.contains(&dir.path().display().to_string()),
        "{}",
        r.stderr
    );
    assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "nothing stored");
}

/// deploy/Dockerfile: `compile` as root, `chmod -R a+rX,go-w`, then `run` (here, as `serve`
/// there) as uid 65532, which cannot write the folder but trusts root's.
#[test]
fn the_images_root_owned_read_only_cache_loads_for_a_non_root_user() {
    if !running_as_root() {
        eprintln!("skipped: needs root to build the image's layout and drop to another user");
        return;
    }
    let s = secrets_file();
    let image = tempfile::tempdir().unwrap();
    let cache = image.path().join("cache");
    let r = run_cli(
        cli()
            .env("WASM_SECRETS_CACHE_DIR", &cache)
            .arg("compile")
            .arg(guest("secrets-get")),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let chmod = std::process::Command::new("chmod")
        .args(["-R", "a+rX,go-w"])
        .arg(image.path())
        .status()
        .unwrap();
    assert!(chmod.success());
    let files = entries(&cache);
    assert_eq!(files.len(), 1);
    let r = run_cli(
        cli()
            .uid(NONROOT_UID)
            .gid(NONROOT_UID)
            .env("WASM_SECRETS_CACHE_DIR", &cache)
            .env("WASM_SECRETS_LOG", "debug")
            .args(["run", "--secrets-file"])
            .arg(s.path())
            .args(["--grant", "db-password"])
            .arg(guest("secrets-get"))
            .arg("db-password"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "db-password=pw-from-file\n");
    assert!(r.stderr.contains(HIT), "{}", r.stderr);
    assert!(!r.stderr.contains(WARNING), "{}", r.stderr);
    assert_eq!(entries(&cache), files);
}
