//! `wasm-secrets compile`: compiles components ahead of time into the cache `run` and `serve`
//! read (`WASM_SECRETS_CACHE_DIR`, else `~/.cache/wasm-secrets`), so that they start without
//! compiling (a container image ships them this way). The folder must be one no one else can
//! write (owned by this user or root, not writable by group or others): compiled components are
//! native code, and `run` and `serve` load them only from such a folder.
//!
//! A compiled form is only used by an engine with the same settings on a CPU with the same
//! features, so `--serve` compiles for `serve`'s engine, computed the way `serve` computes it
//! (see [`serve_limits`]): the same `--max-concurrent` and, from the config, whether any routed
//! component has a fuel limit and the largest memory limit.

use crate::app::serve_limits;
use crate::config::{Config, LimitsConfig};
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;
use wasm_secrets::runtime::{
    CacheUse, EngineOptions, Runtime, default_cache_dir, load_component, prepare_cache_dir,
};

/// Arguments of `compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Compile for `serve` (its pooling engine) rather than `run`.
    #[arg(long)]
    serve: bool,
    /// With --serve: the config `serve -c` will run; its routed components are compiled too.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// With --serve: the --max-concurrent `serve` will run with.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_concurrent: usize,
    /// Component files to compile.
    #[arg(value_name = "WASM")]
    components: Vec<PathBuf>,
}

pub async fn run(args: CompileArgs) -> anyhow::Result<i32> {
    let cache = default_cache_dir().context(
        "no cache folder: set WASM_SECRETS_CACHE_DIR (or HOME) to say where compiled components go",
    )?;
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let mut files = args.components.clone();
    let routed: Vec<_> = config
        .components
        .values()
        .filter(|c| c.route.is_some())
        .collect();
    files.extend(routed.iter().filter_map(|c| c.wasm.clone()));
    anyhow::ensure!(
        !files.is_empty(),
        "nothing to compile: give WASM files, or --serve -c CONFIG with routed components"
    );
    let options = if args.serve {
        let limits: Vec<_> = routed
            .iter()
            .map(|c| serve_limits(LimitsConfig::default(), Some(c), &config))
            .collect();
        EngineOptions::serving(args.max_concurrent, &limits)
    } else {
        EngineOptions::default()
    };
    let runtime = Runtime::new(&options)?;
    // Nothing is stored in a folder someone else can write: say so, rather than compile for
    // nothing.
    prepare_cache_dir(&cache)?;
    for file in &files {
        let started = std::time::Instant::now();
        let (_, used) = load_component(runtime.engine(), file, Some(&cache))?;
        anyhow::ensure!(
            used != CacheUse::Untrusted,
            "{} was not stored: its compiled form in {} is a symbolic link or a file someone \
             other than this user or root can write (the warning above says which)",
            file.display(),
            cache.display()
        );
        eprintln!(
            "compiled {} in {:.1} s",
            file.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}
