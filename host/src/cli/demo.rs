//! `wasm-secrets demo`: the example guests against an embedded secrets file.

use clap::Args;
use std::sync::Arc;
use wasm_secrets::backend::file::FileBackend;
use wasm_secrets::runtime::{self, CommandOptions, EngineOptions, Outcome};
use wasm_secrets::{Grants, SecretsCtx, Vaults};

const HELLO: &[u8] = include_bytes!(concat!(env!("WASM_SECRETS_GUEST_DIR"), "/hello.wasm"));
const SECRETS_GET: &[u8] =
    include_bytes!(concat!(env!("WASM_SECRETS_GUEST_DIR"), "/secrets-get.wasm"));

const DEMO_SECRETS: &str = r#"
db-password = "demo-pa55word"
api-key = "demo-api-key-123"
"#;

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> anyhow::Result<i32> {
    let mut vaults = Vaults::new();
    for (name, backend) in FileBackend::parse(DEMO_SECRETS, "(embedded demo file)")? {
        vaults.insert(name, Arc::new(backend));
    }
    let engine = runtime::build_engine(&EngineOptions::default())?;
    let hello = wasmtime::component::Component::new(&engine, HELLO).map_err(anyhow::Error::from)?;
    let get =
        wasmtime::component::Component::new(&engine, SECRETS_GET).map_err(anyhow::Error::from)?;

    println!("wasm-secrets demo: guests ask for secrets by name; the host decides what they get.");
    println!("The vault here is an embedded secrets file holding db-password and api-key.\n");

    println!("1. `hello` is granted db-password and uses it to build a connection string:");
    let ctx = SecretsCtx::new("hello", Grants::parse(["db-password"])?, vaults.clone());
    run_one(&engine, &hello, ctx, &["hello"]).await?;

    println!(
        "\n2. `secrets-get` is granted db-password only. It asks for db-password, api-key and \"../etc\":"
    );
    let ctx = SecretsCtx::new(
        "secrets-get",
        Grants::parse(["db-password"])?,
        vaults.clone(),
    );
    let code = run_one(
        &engine,
        &get,
        ctx,
        &["secrets-get", "db-password", "api-key", "../etc"],
    )
    .await?;
    println!("   (exit code {code}: a read failed)");

    println!("\nWhat happened:");
    println!("  - db-password was granted, so the host read it and handed the guest its value;");
    println!("  - api-key exists, but this component holds no grant for it: not-granted, and the");
    println!("    vault was never asked;");
    println!("  - \"../etc\" is not a valid secret name: invalid-name, refused at the boundary.");
    println!("The guest never held a credential; with a real vault the host's identity reads it.");
    Ok(0)
}

async fn run_one(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    ctx: SecretsCtx,
    args: &[&str],
) -> anyhow::Result<i32> {
    let options = CommandOptions {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..CommandOptions::default()
    };
    let outcome = runtime::run_command(engine, component, ctx, &options)
        .await?
        .outcome;
    if let Outcome::Failed(why) = &outcome {
        anyhow::bail!("the demo guest failed: {why}");
    }
    Ok(outcome.exit_code())
}
