//! Loading components: compiled from source, or precompiled from a cache on disk that no one
//! else can write.

use super::cache_trust::{self, DirState};
use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The folder compiled components are cached in: `$WASM_SECRETS_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/wasm-secrets`, else `~/.cache/wasm-secrets`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WASM_SECRETS_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasm-secrets"))
}

/// Whether a component came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Loaded precompiled from the cache.
    Hit,
    /// Compiled, then stored in the cache.
    Miss,
    /// Compiled; no cache.
    Off,
    /// Compiled in memory, neither loaded from nor stored in the cache: the cache folder, or the
    /// file in it, could be written by someone other than this user or root (a warning said
    /// which and why).
    Untrusted,
}

/// Reads the component at `path` (binary, or `.wat` text) and compiles it, or loads the
/// compiled form from `cache_dir` when an earlier run stored it and no one else can write it
/// (see [`compile_cached`]).
///
/// The error says in one line what is wrong: a missing file, or a file that is not a
/// WebAssembly component.
pub fn load_component(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<(Component, CacheUse)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read component {}", path.display()))?;
    let is_text = path.extension().is_some_and(|e| e == "wat");
    if !is_text {
        anyhow::ensure!(
            bytes.starts_with(b"\0asm"),
            "{} is not a WebAssembly component (no \\0asm header); build one for wasm32-wasip2",
            path.display()
        );
        anyhow::ensure!(
            bytes.get(4..8) != Some(&[1, 0, 0, 0]),
            "{} is a core WebAssembly module, not a component; build for wasm32-wasip2 or wrap it with `wasm-tools component new`",
            path.display()
        );
    }
    compile_cached(engine, &bytes, &path.display().to_string(), cache_dir)
}

/// Compiles component `bytes` (`label` names it in messages), or loads the compiled form
/// from `cache_dir` when an earlier run stored it.
///
/// A compiled form is native code the host runs, so the cache is used only when no one else
/// can write it: the folder must be owned by this user or root and not writable by group or
/// others, and the file likewise (and not a symbolic link). Otherwise the component is compiled
/// in memory, nothing is loaded or stored, one warning names the folder and what is wrong, and
/// the result is [`CacheUse::Untrusted`]. A missing folder is created readable by this user
/// only, and files are written the same way.
pub fn compile_cached(
    engine: &Engine,
    bytes: &[u8],
    label: &str,
    cache_dir: Option<&Path>,
) -> anyhow::Result<(Component, CacheUse)> {
    let Some(dir) = cache_dir else {
        return Ok((compile(engine, bytes, label)?, CacheUse::Off));
    };
    let untrusted = |why: cache_trust::Untrusted| -> anyhow::Result<(Component, CacheUse)> {
        cache_trust::warn_once(dir, &why);
        Ok((compile(engine, bytes, label)?, CacheUse::Untrusted))
    };
    let cached = dir.join(cache_key(engine, bytes));
    match cache_trust::check_dir(dir) {
        Err(why) => return untrusted(why),
        Ok(DirState::Missing) => {}
        Ok(DirState::Trusted) => match cache_trust::read_file(&cached) {
            Err(why) => return untrusted(why),
            Ok(None) => {}
            Ok(Some(compiled)) => {
                // SAFETY: the bytes come from a file that only this user or root can write,
                // in a folder only they can write (checked just above, on the handle they were
                // read from), stored there by `Component::serialize` below under a name that
                // includes the hash of the source and of the engine's compatibility settings.
                // wasmtime checks the header and version before use.
                match unsafe { Component::deserialize(engine, &compiled) } {
                    Ok(component) => {
                        tracing::debug!(component = label, cache = %cached.display(), "loaded compiled component from cache");
                        return Ok((component, CacheUse::Hit));
                    }
                    Err(e) => {
                        tracing::warn!(cache = %cached.display(), error = %e, "ignoring unusable cache entry")
                    }
                }
            }
        },
    }
    let component = compile(engine, bytes, label)?;
    tracing::debug!(component = label, cache = %cached.display(), "compiled component, not found in the cache");
    match store(&component, dir, &cached) {
        Ok(Stored::Yes) => Ok((component, CacheUse::Miss)),
        Ok(Stored::Untrusted(why)) => {
            cache_trust::warn_once(dir, &why);
            Ok((component, CacheUse::Untrusted))
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot cache the compiled component");
            Ok((component, CacheUse::Miss))
        }
    }
}

/// Creates the cache folder `dir` if it is missing (readable by this user only), and checks
/// that no one else can write it (see [`compile_cached`]); the error says what is wrong.
pub fn prepare_cache_dir(dir: &Path) -> anyhow::Result<()> {
    if cache_trust::check_dir(dir).map_err(|why| anyhow::anyhow!("{why}"))? == DirState::Missing {
        cache_trust::create_dir(dir)
            .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    }
    match cache_trust::check_dir(dir).map_err(|why| anyhow::anyhow!("{why}"))? {
        DirState::Trusted => Ok(()),
        DirState::Missing => anyhow::bail!("the cache folder {} vanished", dir.display()),
    }
}

fn compile(engine: &Engine, bytes: &[u8], label: &str) -> anyhow::Result<Component> {
    Component::new(engine, bytes).map_err(|e| {
        let text = format!("{e:#}");
        anyhow::anyhow!(
            "{label} is not a valid component: {}",
            text.lines().next().unwrap_or("")
        )
    })
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let digest = Sha256::new()
        .chain_update(compat.finish().to_le_bytes())
        .chain_update(env!("CARGO_PKG_VERSION"))
        .chain_update(bytes)
        .finalize();
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("{hex}.cwasm")
}

enum Stored {
    Yes,
    /// The folder was created (or found) but not by this user or root.
    Untrusted(cache_trust::Untrusted),
}

fn store(component: &Component, dir: &Path, dest: &Path) -> anyhow::Result<Stored> {
    if cache_trust::check_dir(dir) == Ok(DirState::Missing) {
        cache_trust::create_dir(dir)?;
    }
    // Checked again: someone else may have created it in the meantime.
    match cache_trust::check_dir(dir) {
        Ok(DirState::Trusted) => {}
        Ok(DirState::Missing) => anyhow::bail!("the folder vanished"),
        Err(why) => return Ok(Stored::Untrusted(why)),
    }
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    cache_trust::write_file(dest, &bytes)?;
    Ok(Stored::Yes)
}
