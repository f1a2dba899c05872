//! `wasm-secrets check`: validate the config, reach every vault, resolve every grant.

use crate::{HostArgs, host};
use anyhow::Context as _;
use clap::Args;
use wasm_secrets::egress::oauth2_exchange;
use wasm_secrets::http::HttpClient;
use wasm_secrets::uses::SecretRef;
use wasm_secrets::{Grant, Grants, SecretValue};

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    host: HostArgs,
}

/// One line per vault and per grant; exit 1 if anything failed.
pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let config = host::load_config(&args.host)?;
    let mut failed = false;

    // Grants: the flags' (for the command line's component) and every config component's.
    let mut grant_sets: Vec<(String, Grants)> = Vec::new();
    if !args.host.grants.is_empty() {
        grant_sets.push(("(flags)".into(), host::build_grants(&args.host, None)?));
    }
    for (name, c) in &config.components {
        let grants = crate::config::parse_grants(&c.grants, c.allow_whole_vault)
            .with_context(|| format!("component {name}"))?;
        grant_sets.push((name.clone(), grants));
    }

    for (name, kind) in host::describe_sources(&args.host, &config)? {
        println!("vault {name}: {kind}");
    }
    let connector = host::connector(&config);
    let vaults = host::build_vaults(&args.host, &config, &connector)?;
    let token_http = host::token_http(&args.host, &config, &connector)?;
    for name in vaults.names() {
        let Some(backend) = vaults.get(name) else {
            continue;
        };
        match backend.list().await {
            Ok(names) => println!(
                "vault {name}: ok, reachable ({} secrets listed)",
                names.len()
            ),
            Err(e) => {
                failed = true;
                println!("vault {name}: FAILED: {e}");
            }
        }
    }
    if grant_sets.is_empty() {
        println!("no grants to check (give --grant or [components.NAME] grants)");
    }
    for (component, grants) in &grant_sets {
        for grant in grants.iter() {
            let line = check_grant(&vaults, grant, &token_http).await;
            failed |= line.is_err();
            match line {
                Ok(ok) => println!("grant {component} {grant}: ok, {ok}"),
                Err(e) => println!("grant {component} {grant}: FAILED: {e}"),
            }
        }
        for grant in grants.keys() {
            let line = check_key_grant(&vaults, grant).await;
            failed |= line.is_err();
            match line {
                Ok(ok) => println!("grant {component} {grant}: ok, {ok}"),
                Err(e) => println!("grant {component} {grant}: FAILED: {e}"),
            }
        }
    }
    Ok(i32::from(failed))
}

/// A key grant holds if the key's public half is readable and the key itself permits every
/// operation the grant allows. (Whether the identity may use it is known only when it does.)
async fn check_key_grant(vaults: &wasm_secrets::Vaults, grant: &Grant) -> Result<String, String> {
    let keys = vaults
        .get(&grant.vault)
        .ok_or_else(|| format!("vault \"{}\" is not configured", grant.vault))?
        .keys()
        .ok_or_else(|| {
            format!(
                "vault \"{}\" is not a Key Vault: it has no keys",
                grant.vault
            )
        })?;
    if grant.pattern {
        return Ok("a pattern: each key is checked when it is used".into());
    }
    let public = keys
        .public_key(&grant.object, grant.version.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    if !public.enabled {
        return Err(format!("{}/{} is disabled", grant.vault, grant.object));
    }
    let jwk: serde_json::Value = serde_json::from_str(&public.jwk).map_err(|e| e.to_string())?;
    let permitted: Vec<&str> = jwk["key_ops"]
        .as_array()
        .map(|ops| ops.iter().filter_map(|o| o.as_str()).collect())
        .unwrap_or_default();
    for op in grant.ops.iter() {
        // Key Vault spells them wrapKey and unwrapKey.
        let wire = match op {
            wasm_secrets::keys::KeyOp::WrapKey => "wrapKey",
            wasm_secrets::keys::KeyOp::UnwrapKey => "unwrapKey",
            other => other.as_str(),
        };
        if !permitted.is_empty() && !permitted.contains(&wire) {
            return Err(format!(
                "the key {}/{} does not permit {op} (its key_ops: {})",
                grant.vault,
                grant.object,
                permitted.join(", ")
            ));
        }
    }
    let curve = public
        .crv
        .as_deref()
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    Ok(format!(
        "{}/{} is an {}{curve} key (version {})",
        grant.vault, grant.object, public.kty, public.version
    ))
}

/// A secret grant holds if its secret (each of a use-only grant's two) is readable, and an
/// `oauth2` grant's token URL issues a token for the client id and secret it names.
async fn check_grant(
    vaults: &wasm_secrets::Vaults,
    grant: &Grant,
    token_http: &HttpClient,
) -> Result<String, String> {
    let first = SecretRef {
        vault: grant.vault.clone(),
        object: grant.object.clone(),
        version: grant.version.clone(),
    };
    if grant.pattern {
        let backend = backend(vaults, &first)?;
        let names = backend.list().await.map_err(|e| e.to_string())?;
        let n = names.iter().filter(|n| grant.matches(n)).count();
        return Ok(format!("matches {n} secrets in vault \"{}\"", grant.vault));
    }
    let Some(use_only) = &grant.use_only else {
        return check_secret(vaults, &first).await;
    };
    let mut line = check_secret(vaults, &first).await?;
    if let Some(second) = &use_only.second {
        line = format!("{line}; {}", check_secret(vaults, second).await?);
    }
    if let (Some(endpoint), Some(second)) = (&use_only.token_endpoint, &use_only.second) {
        let id = read(vaults, &first).await?;
        let secret = read(vaults, second).await?;
        let token = oauth2_exchange(token_http, endpoint, &id, &secret)
            .await
            .map_err(|e| format!("{line}; but the token URL gave no token: {e}"))?;
        let left = token.remaining_at(std::time::SystemTime::now()).as_secs();
        line = format!("{line}; {} issued a token (valid {left} s)", endpoint.url);
    }
    Ok(line)
}

fn backend<'a>(
    vaults: &'a wasm_secrets::Vaults,
    secret: &SecretRef,
) -> Result<&'a std::sync::Arc<dyn wasm_secrets::Backend>, String> {
    vaults
        .get(&secret.vault)
        .ok_or_else(|| format!("vault \"{}\" is not configured", secret.vault))
}

/// Whether `secret` is readable: its metadata, or its value when a version is pinned (the
/// metadata of a disabled version answers; its value does not).
async fn check_secret(vaults: &wasm_secrets::Vaults, secret: &SecretRef) -> Result<String, String> {
    let backend = backend(vaults, secret)?;
    let (vault, object) = (&secret.vault, &secret.object);
    match &secret.version {
        Some(v) => backend
            .get(object, Some(v))
            .await
            .map(|_| format!("version {v} of {vault}/{object} is readable"))
            .map_err(|e| e.to_string()),
        None => backend
            .info(object, None)
            .await
            .map(|m| format!("{vault}/{object} is readable (version {})", m.version))
            .map_err(|e| e.to_string()),
    }
}

/// The value of `secret`, for a token exchange.
async fn read(vaults: &wasm_secrets::Vaults, secret: &SecretRef) -> Result<SecretValue, String> {
    backend(vaults, secret)?
        .get(&secret.object, secret.version.as_deref())
        .await
        .map(|s| s.value)
        .map_err(|e| e.to_string())
}
