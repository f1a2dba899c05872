//! The wasmtime engine, and a cache of compiled components on disk.

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// How to build the engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Count fuel, so that `Limits::fuel` can stop a guest.
    pub fuel: bool,
}

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

/// An engine for running components with async host calls, epoch deadlines and, if asked,
/// fuel.
pub fn build_engine(options: &EngineOptions) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(options.fuel);
    Engine::new(&config).map_err(anyhow::Error::from)
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
}

/// Reads the component at `path` (binary, or `.wat` text) and compiles it, or loads the
/// compiled form from `cache_dir` when an earlier run stored it.
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
pub fn compile_cached(
    engine: &Engine,
    bytes: &[u8],
    label: &str,
    cache_dir: Option<&Path>,
) -> anyhow::Result<(Component, CacheUse)> {
    let Some(dir) = cache_dir else {
        return Ok((compile(engine, bytes, label)?, CacheUse::Off));
    };
    let cached = dir.join(cache_key(engine, bytes));
    if cached.is_file() {
        // SAFETY: the file was written by `Component::serialize` below, into the user's own
        // cache folder, under a name that includes the hash of the source and of the engine's
        // compatibility settings. wasmtime checks the header and version before use.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => {
                tracing::debug!(component = label, cache = %cached.display(), "loaded compiled component from cache");
                return Ok((component, CacheUse::Hit));
            }
            Err(e) => {
                tracing::warn!(cache = %cached.display(), error = %e, "ignoring unusable cache entry")
            }
        }
    }
    let component = compile(engine, bytes, label)?;
    tracing::debug!(component = label, cache = %cached.display(), "compiled component, not found in the cache");
    if let Err(e) = store(&component, dir, &cached) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot cache the compiled component");
    }
    Ok((component, CacheUse::Miss))
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

fn store(component: &Component, dir: &Path, dest: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}
