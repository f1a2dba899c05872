//! Builds the guest components (`guest/`, its own cargo workspace) for `wasm32-wasip2`.
//!
//! Like wasmtime's `test-programs-artifacts`, this runs a nested
//! `cargo build --release --target wasm32-wasip2 --manifest-path guest/Cargo.toml` into
//! `<target dir>/wasm-guests` (its own target dir: sharing the outer one would deadlock on its
//! lock), with the variables the outer cargo leaks into build scripts removed. It then sets
//! `WASM_SECRETS_GUEST_DIR` to the directory holding `hello.wasm`, `secrets-get.wasm`, ... so the
//! host can `include_bytes!` them and tests can find them.
//!
//! It reruns only when the guest sources, the guest manifest or lock file, or the WIT change.
//! With `WASM_SECRETS_SKIP_GUESTS` set it builds nothing and only sets the variable.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let repo = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let guest = repo.join("guest");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let guest_target = target_dir(&out_dir).join("wasm-guests");
    let artifacts = guest_target.join(TARGET).join("release");

    for input in ["src", "components", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", guest.join(input).display());
    }
    println!("cargo:rerun-if-changed={}", repo.join("wit").display());
    println!("cargo:rerun-if-env-changed=WASM_SECRETS_SKIP_GUESTS");
    println!(
        "cargo:rustc-env=WASM_SECRETS_GUEST_DIR={}",
        artifacts.display()
    );

    if env::var_os("WASM_SECRETS_SKIP_GUESTS").is_some() {
        return;
    }
    ensure_target_installed();
    build_guests(&guest.join("Cargo.toml"), &guest_target);
}

/// The outer build's target directory: the nearest ancestor of `OUT_DIR` that cargo marked with
/// `CACHEDIR.TAG`, else `OUT_DIR` itself (which still keeps the nested build's lock separate).
fn target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or(out_dir)
        .to_path_buf()
}

/// A `Command` with the environment of the outer cargo and of this build script removed, so the
/// nested build sees only the user's own settings (`PATH`, `RUSTUP_*`, `CARGO_HOME`, the network
/// and registry settings `CARGO_NET_*`, `CARGO_HTTP_*`, `CARGO_REGISTRIES_*`, ...).
fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let user_setting = ["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTR"]
            .iter()
            .any(|kept| key.starts_with(kept));
        let leaked = (key.starts_with("CARGO") && !user_setting)
            || key.starts_with("__CARGO")
            || key.starts_with("DEP_")
            || matches!(
                key,
                "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTC_LINKER"
                    | "RUSTDOC"
                    | "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if leaked {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Makes sure rustup has the `wasm32-wasip2` standard library, adding it if it can.
fn ensure_target_installed() {
    let installed = clean_command("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
            {
                return;
            }
        }
        // No rustup (a toolchain installed some other way): let the build say what is missing.
        _ => return,
    }
    let added = clean_command("rustup")
        .args(["target", "add", TARGET])
        .output();
    assert!(
        added.is_ok_and(|out| out.status.success()),
        "the wasm32-wasip2 target is missing: run 'rustup target add wasm32-wasip2'"
    );
}

/// Runs the nested cargo build; on failure panics with the last lines it printed.
fn build_guests(manifest: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = clean_command(cargo)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guest components: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        panic!(
            "building the guest components ({}) failed: {}\n{tail}",
            manifest.display(),
            output.status
        );
    }
}
