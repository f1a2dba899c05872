//! `wasm-secrets demo`: the whole story on an in-process Azure emulator. No account, no
//! network: every request goes to 127.0.0.1.

use clap::Args;
use std::sync::{Arc, Mutex};
use wasm_secrets::audit::{AuditEvent, AuditSink};
use wasm_secrets::cache::CacheConfig;
use wasm_secrets::connect::{Connector, VaultSettings};
use wasm_secrets::credential::CredentialKind;
use wasm_secrets::credential::Env;
use wasm_secrets::runtime::{
    CommandOptions, EngineOptions, Outcome, Runtime, compile_cached, default_cache_dir,
};
use wasm_secrets::{Grants, SecretsCtx, Vaults};
use wasm_secrets_emulator::{Emulator, EmulatorConfig, Endpoint};
use wasmtime::component::Component;

const HELLO: &[u8] = include_bytes!(concat!(env!("WASM_SECRETS_GUEST_DIR"), "/hello.wasm"));
const SECRETS_GET: &[u8] =
    include_bytes!(concat!(env!("WASM_SECRETS_GUEST_DIR"), "/secrets-get.wasm"));
const JWT_SIGN: &[u8] = include_bytes!(concat!(env!("WASM_SECRETS_GUEST_DIR"), "/jwt-sign.wasm"));

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {}

/// Collects audit lines so the demo can show them under each step.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl AuditSink for Lines {
    fn record(&self, e: &AuditEvent<'_>) -> std::io::Result<()> {
        let line = serde_json::to_string(e)?;
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        Ok(())
    }
}

impl Lines {
    fn drain(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub async fn run(_args: DemoArgs) -> anyhow::Result<i32> {
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    println!(
        "wasm-secrets demo: a guest asks for secrets by name; the host decides what it gets.\n"
    );
    println!("An Azure emulator is running on 127.0.0.1 (no account, no network):");
    println!("  managed identity (IMDS) {}", emulator.imds_base());
    println!("  Key Vault               {}", emulator.default_vault_url());
    println!(
        "The host, not the guest, holds the identity: it gets a token from IMDS and reads Key Vault.\n"
    );

    // The host's side: the managed-identity credential pointed at the emulator's IMDS.
    let env = Env::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", emulator.imds_base())]);
    let connector = Connector::new(env, CacheConfig::default()).loopback_only(true);
    let vault = connector.key_vault(&VaultSettings {
        url: emulator.default_vault_url(),
        credential: CredentialKind::ManagedIdentity,
        ca_cert: Some(emulator.ca_cert_path()),
        ..VaultSettings::default()
    })?;
    let vaults = Vaults::new().with("default", vault);
    let audit = Arc::new(Lines::default());
    let mut seen = String::new();

    let runtime = Runtime::new(&EngineOptions::default())?;
    let engine = runtime.engine();
    let cache = default_cache_dir();
    let hello = compile_cached(engine, HELLO, "hello.wasm", cache.as_deref())?.0;
    let get = compile_cached(engine, SECRETS_GET, "secrets-get.wasm", cache.as_deref())?.0;
    let jwt = compile_cached(engine, JWT_SIGN, "jwt-sign.wasm", cache.as_deref())?.0;

    let step = |grants: &[&str], name: &str| -> anyhow::Result<SecretsCtx> {
        Ok(SecretsCtx::new(name, Grants::parse(grants)?, vaults.clone()).with_audit(audit.clone()))
    };

    println!("1. `hello` is granted db-password and uses it to build a connection string:");
    show(
        &runtime,
        &hello,
        step(&["db-password"], "hello")?,
        &["hello"],
        &audit,
        &mut seen,
    )
    .await?;

    println!(
        "\n2. `secrets-get` is granted db-password, restricted and nope. It asks for five names:"
    );
    let ctx = step(&["db-password", "restricted", "nope"], "secrets-get")?;
    let args = [
        "secrets-get",
        "db-password",
        "api-key",
        "nope",
        "restricted",
        "../etc",
    ];
    let code = show(&runtime, &get, ctx, &args, &audit, &mut seen).await?;
    println!("   (the guest exited with code {code}: some reads failed)");

    println!("\nWhat happened:");
    println!(
        "  - db-password: granted, read from Key Vault by the host (cache: hit, from step 1);"
    );
    println!(
        "  - api-key: exists, but not granted to this component: refused before any vault call;"
    );
    println!("  - nope: granted, but the vault has no such secret: not-found;");
    println!("  - restricted: granted, but the host's identity may not read it (403): forbidden;");
    println!("  - ../etc: not a valid secret name: refused at the boundary.");

    println!(
        "\n3. `jwt-sign` is granted the key jwt-signing-key as `signer`, for sign only. It signs a JWT;\n   the private key never leaves the vault:"
    );
    let grant = "key:signer=jwt-signing-key:sign";
    let ctx = step(&[grant], "jwt-sign")?;
    let (_, signed) = capture(
        &runtime,
        &jwt,
        ctx,
        &["jwt-sign", "sub=alice", "role=reader"],
    )
    .await?;
    let token = signed.trim_end();
    show_lines(&signed, &audit, &mut seen);
    let checker = step(&["key:jwt-signing-key:verify"], "demo-check")?;
    let verified = verify_jwt(&checker, "jwt-signing-key", token).await?;
    anyhow::ensure!(verified, "the demo's JWT did not verify");
    audit.drain();
    println!(
        "   check | the token's ES256 signature verifies against jwt-signing-key's public key: {verified}"
    );
    println!("   The same component granted verify only (key:signer=jwt-signing-key:verify):");
    let ctx = step(&["key:signer=jwt-signing-key:verify"], "jwt-sign")?;
    show(
        &runtime,
        &jwt,
        ctx,
        &["jwt-sign", "sub=alice"],
        &audit,
        &mut seen,
    )
    .await?;
    println!(
        "The emulator saw {} token request(s) to IMDS and {} Key Vault request(s) (incl. the 401 challenge).",
        emulator.count(Endpoint::Imds),
        emulator.count(Endpoint::KeyVault)
    );
    let canary = emulator.canary();
    anyhow::ensure!(
        !seen.contains(&canary),
        "a token reached a guest or the audit log"
    );
    println!(
        "Every token it minted carries the marker {canary:?}; no guest output or audit line above holds it."
    );
    emulator.shutdown().await;
    Ok(0)
}

/// Runs one guest with its output captured; returns its exit code and its stdout then stderr.
async fn capture(
    runtime: &Runtime,
    component: &Component,
    ctx: SecretsCtx,
    args: &[&str],
) -> anyhow::Result<(i32, String)> {
    let options = CommandOptions {
        args: args.iter().map(|s| s.to_string()).collect(),
        capture_output: true,
        ..CommandOptions::default()
    };
    let result = runtime.run_command(component, ctx, &options).await?;
    if let Outcome::Failed(why) = &result.outcome {
        anyhow::bail!("the demo guest failed: {why}");
    }
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    Ok((result.outcome.exit_code(), output))
}

/// Prints a guest's output and the audit lines since the last step.
fn show_lines(output: &str, audit: &Lines, seen: &mut String) {
    for line in output.lines() {
        println!("   guest | {line}");
        seen.push_str(line);
    }
    for line in audit.drain() {
        println!("   audit | {line}");
        seen.push_str(&line);
    }
}

/// Whether `token`'s ES256 signature is `key`'s, checked by the host on the key's public half.
async fn verify_jwt(ctx: &SecretsCtx, key: &str, token: &str) -> anyhow::Result<bool> {
    use base64::Engine;
    use sha2::Digest;
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| anyhow::anyhow!("jwt-sign printed no token"))?;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature)?;
    let digest = sha2::Sha256::digest(signed.as_bytes());
    Ok(ctx
        .keys()
        .verify(
            key,
            wasm_secrets::keys::SignatureAlgorithm::Es256,
            &digest,
            &signature,
        )
        .await?)
}

/// Runs one guest with its output captured, then prints its output and the audit lines.
async fn show(
    runtime: &Runtime,
    component: &Component,
    ctx: SecretsCtx,
    args: &[&str],
    audit: &Lines,
    seen: &mut String,
) -> anyhow::Result<i32> {
    let (code, output) = capture(runtime, component, ctx, args).await?;
    show_lines(&output, audit, seen);
    Ok(code)
}
