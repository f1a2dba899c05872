//! A local Azure emulator speaking Azure's wire protocols on loopback: IMDS, App Service (2019-08-01 and
//! 2017-09-01), Azure Arc, the Entra v2 token endpoint, and Key Vault secrets and keys (with real
//! cryptography) over HTTPS with a generated CA.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let emu = wasm_secrets_emulator::Emulator::start(Default::default()).await?;
//! println!("vault at {}, CA in {}", emu.default_vault_url(), emu.ca_cert_path().display());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod app_service;
pub mod arc;
pub mod config;
pub mod crypto;
pub mod entra;
pub mod faults;
pub mod http;
pub mod imds;
pub mod key_store;
pub mod keys;
pub mod keyvault;
pub mod kv_answer;
pub mod server;
pub mod state;
pub mod tls;
pub mod token;
pub mod vault;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use config::{EmulatorConfig, LegacyDateForm, ThrottleConfig};
pub use faults::{Endpoint, Fault, FaultSpec};

use server::Service;
use state::State;
use vault::{PutAttributes, Vault};

/// A running emulator. Its servers stop when it is dropped or shut down.
#[derive(Debug)]
pub struct Emulator {
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    ports: HashMap<&'static str, u16>,
    vault_ports: BTreeMap<String, u16>,
    default_vault: String,
    ca_path: PathBuf,
    ca_pem: String,
    /// A temp dir we created (removed on drop).
    owned_dir: Option<PathBuf>,
}

impl Emulator {
    /// Bind every listener on 127.0.0.1, write the CA file and start serving.
    pub async fn start(config: EmulatorConfig) -> anyhow::Result<Emulator> {
        config.validate()?;
        let needs_dir = config.ca_cert_path.is_none() || config.arc_token_dir.is_none();
        let owned_dir = if needs_dir {
            let d = std::env::temp_dir().join(format!(
                "wasm-secrets-emulator-{}-{}",
                std::process::id(),
                token::random_hex(6)
            ));
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create state dir {}", d.display()))?;
            Some(d)
        } else {
            None
        };
        let state_dir = owned_dir.clone().unwrap_or_default();
        let ca_path = config
            .ca_cert_path
            .clone()
            .unwrap_or_else(|| state_dir.join("ca.pem"));
        let arc_dir = config
            .arc_token_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("arc-tokens"));
        std::fs::create_dir_all(&arc_dir)
            .with_context(|| format!("cannot create Arc token dir {}", arc_dir.display()))?;

        let tls = tls::generate(&config.tls_names)?;
        std::fs::write(&ca_path, &tls.ca_pem)
            .with_context(|| format!("cannot write CA file {}", ca_path.display()))?;
        let acceptor = TlsAcceptor::from(tls.server_config.clone());

        let p = &config.ports;
        let mut plain = Vec::new();
        for (name, port, svc) in [
            ("imds", p.imds, Service::Imds),
            ("app_service", p.app_service, Service::AppService),
            (
                "app_service_legacy",
                p.app_service_legacy,
                Service::AppServiceLegacy,
            ),
            ("arc", p.arc, Service::Arc),
            ("entra", p.entra, Service::Entra),
            ("admin", p.admin, Service::Admin),
        ] {
            plain.push((name, server::bind(port).await?, svc));
        }
        let entra_tls = server::bind(p.entra_tls).await?;
        let mut vault_listeners = Vec::new();
        for v in &config.vaults {
            vault_listeners.push((v.name.clone(), server::bind(v.port).await?));
        }

        let mut ports = HashMap::new();
        for (name, l, _) in &plain {
            ports.insert(*name, l.local_addr()?.port());
        }
        let entra_tls_port = entra_tls.local_addr()?.port();
        ports.insert("entra_tls", entra_tls_port);
        let mut vault_ports = BTreeMap::new();
        for (name, l) in &vault_listeners {
            vault_ports.insert(name.clone(), l.local_addr()?.port());
        }
        let default_vault = config
            .default_vault
            .clone()
            .unwrap_or_else(|| config.vaults[0].name.clone());

        let state = Arc::new(State {
            tokens: token::TokenAuthority::new(
                &config.tenant_id,
                &config.canary,
                config.token_lifetime_secs,
            ),
            faults: faults::FaultBoard::default(),
            vaults: config
                .vaults
                .iter()
                .map(|v| (v.name.clone(), Vault::from_config(v)))
                .collect(),
            throttle: Mutex::new(config.throttle.clone()),
            arc_dir,
            arc_keys: Mutex::new(Vec::new()),
            authority_host: format!("https://127.0.0.1:{entra_tls_port}"),
            config,
        });
        let f = &state.config.faults;
        for (e, specs) in [
            (Endpoint::Imds, &f.imds),
            (Endpoint::AppService, &f.app_service),
            (Endpoint::AppServiceLegacy, &f.app_service_legacy),
            (Endpoint::Arc, &f.arc),
            (Endpoint::Entra, &f.entra),
            (Endpoint::KeyVault, &f.keyvault),
        ] {
            if !specs.is_empty() {
                state
                    .faults
                    .set(e, specs.iter().cloned().map(Fault::from).collect());
            }
        }

        let (tx, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for (_, l, svc) in plain {
            tasks.push(tokio::spawn(server::run(
                l,
                None,
                svc,
                state.clone(),
                rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(server::run(
            entra_tls,
            Some(acceptor.clone()),
            Service::Entra,
            state.clone(),
            rx.clone(),
        )));
        for (name, l) in vault_listeners {
            tasks.push(tokio::spawn(server::run(
                l,
                Some(acceptor.clone()),
                Service::Vault(name),
                state.clone(),
                rx.clone(),
            )));
        }
        tracing::info!(vaults = vault_ports.len(), "emulator started");
        Ok(Emulator {
            state,
            shutdown: tx,
            tasks,
            ports,
            vault_ports,
            default_vault,
            ca_path,
            ca_pem: tls.ca_pem,
            owned_dir,
        })
    }

    fn base(&self, name: &str) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.ports.get(name).copied().unwrap_or(0)
        )
    }

    /// The `(NAME, VALUE)` pairs printed as `export` lines by the binary.
    pub fn exports(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), self.imds_base()),
            ("IDENTITY_ENDPOINT".into(), self.app_service_endpoint()),
            ("IDENTITY_HEADER".into(), self.app_service_header()),
            ("AZURE_AUTHORITY_HOST".into(), self.authority_host()),
            ("AZURE_TENANT_ID".into(), self.tenant_id()),
            ("WASM_SECRETS_VAULT".into(), self.default_vault_url()),
            (
                "WASM_SECRETS_CA_CERT".into(),
                self.ca_cert_path().display().to_string(),
            ),
        ]
    }

    /// IMDS base URL, e.g. `http://127.0.0.1:P` (the value of `AZURE_POD_IDENTITY_AUTHORITY_HOST`).
    pub fn imds_base(&self) -> String {
        self.base("imds")
    }

    /// App Service 2019-08-01 `IDENTITY_ENDPOINT`.
    pub fn app_service_endpoint(&self) -> String {
        format!("{}{}", self.base("app_service"), app_service::PATH)
    }

    /// App Service `IDENTITY_HEADER` (also the legacy `MSI_SECRET`).
    pub fn app_service_header(&self) -> String {
        self.state.config.identity_header.clone()
    }

    /// Legacy (2017-09-01) `MSI_ENDPOINT`.
    pub fn legacy_msi_endpoint(&self) -> String {
        format!("{}{}", self.base("app_service_legacy"), app_service::PATH)
    }

    /// Legacy `MSI_SECRET`.
    pub fn legacy_msi_secret(&self) -> String {
        self.state.config.identity_header.clone()
    }

    /// Arc `IDENTITY_ENDPOINT` (full token URL).
    pub fn arc_identity_endpoint(&self) -> String {
        format!("{}{}", self.base("arc"), imds::TOKEN_PATH)
    }

    /// Arc `IMDS_ENDPOINT` (base URL).
    pub fn arc_imds_endpoint(&self) -> String {
        self.base("arc")
    }

    /// The folder where Arc challenge `.key` files are written.
    pub fn arc_token_dir(&self) -> PathBuf {
        self.state.arc_dir.clone()
    }

    /// The Entra authority host over HTTPS (`AZURE_AUTHORITY_HOST`; MSAL requires https).
    pub fn authority_host(&self) -> String {
        self.state.authority_host.clone()
    }

    /// The Entra authority host over plain HTTP (same behaviour; for clients that allow http on loopback).
    pub fn authority_host_http(&self) -> String {
        self.base("entra")
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> String {
        self.state.config.tenant_id.clone()
    }

    /// A vault's URL, `https://127.0.0.1:P`.
    pub fn vault_url(&self, vault: &str) -> Option<String> {
        self.vault_ports
            .get(vault)
            .map(|p| format!("https://127.0.0.1:{p}"))
    }

    /// The default vault's URL.
    pub fn default_vault_url(&self) -> String {
        self.vault_url(&self.default_vault).unwrap_or_default()
    }

    /// Where the CA PEM was written.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.ca_path.clone()
    }

    /// The CA PEM.
    pub fn ca_cert_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The canary embedded in every token.
    pub fn canary(&self) -> String {
        self.state.config.canary.clone()
    }

    /// The admin endpoint's base URL.
    pub fn admin_url(&self) -> String {
        self.base("admin")
    }

    /// The configuration the emulator runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.state.config
    }

    /// Requests seen by an endpoint (faulted ones included).
    pub fn count(&self, endpoint: Endpoint) -> u64 {
        self.state.faults.count(endpoint)
    }

    /// Requests seen by one vault.
    pub fn vault_count(&self, vault: &str) -> u64 {
        self.state.faults.vault_count(vault)
    }

    /// Zero every counter.
    pub fn reset_counters(&self) {
        self.state.faults.reset()
    }

    /// Replace an endpoint's fault sequence (consumed one per request, then normal behaviour).
    pub fn set_faults(&self, endpoint: Endpoint, faults: Vec<Fault>) {
        self.state.faults.set(endpoint, faults)
    }

    /// Every token minted so far (the last thousand): leak tests look for any piece of them.
    pub fn minted_tokens(&self) -> Vec<String> {
        self.state.tokens.minted()
    }

    /// Set (or clear) a fault applied to every request of an endpoint once its sequence is used
    /// up: an outage that lasts until cleared.
    pub fn set_standing_fault(&self, endpoint: Endpoint, fault: Option<Fault>) {
        self.state.faults.set_standing(endpoint, fault)
    }

    /// Add a new version of a secret (creating it if needed); returns the version id, or an empty
    /// string if the vault does not exist or the name is invalid.
    pub fn put_secret(&self, vault: &str, name: &str, value: &str) -> String {
        if !config::valid_secret_name(name) {
            return String::new();
        }
        self.state
            .vaults
            .get(vault)
            .and_then(|v| {
                v.put(
                    name,
                    value,
                    None,
                    BTreeMap::new(),
                    &PutAttributes::default(),
                )
            })
            .map(|v| v.id)
            .unwrap_or_default()
    }

    /// Enable or disable a secret's latest version.
    pub fn set_secret_enabled(&self, vault: &str, name: &str, enabled: bool) {
        if let Some(v) = self.state.vaults.get(vault) {
            v.set_enabled(name, enabled);
        }
    }

    /// The public JWK of a key version exactly as `GET /keys/{name}[/{version}]` returns it under
    /// `key` (`kid`, `kty`, `key_ops`, and `n`, `e` or `crv`, `x`, `y`; never private parts), with
    /// `kid` under [`Emulator::vault_url`]. `None` (or an empty version) means the latest version.
    /// Returns `None` when the vault, key or version does not exist. The first call for an RSA key
    /// version may take a moment: its material is generated on first use.
    pub fn public_key_jwk(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
    ) -> Option<serde_json::Value> {
        let base = self.vault_url(vault)?;
        let keys = &self.state.vaults.get(vault)?.keys;
        let v = keys.find(name, version)?;
        v.public_jwk(&base, &keys.spelling(name)).ok()
    }

    /// The version ids of a key, oldest first (the last is the latest); empty when unknown.
    pub fn key_versions(&self, vault: &str, name: &str) -> Vec<String> {
        self.state
            .vaults
            .get(vault)
            .and_then(|v| v.keys.versions(name))
            .map(|vs| vs.iter().map(|v| v.id.clone()).collect())
            .unwrap_or_default()
    }

    /// Delay every answer of a vault (for benchmarks).
    pub fn set_vault_latency(&self, vault: &str, latency: Duration) {
        if let Some(v) = self.state.vaults.get(vault)
            && let Ok(mut l) = v.latency.lock()
        {
            *l = latency;
        }
    }

    /// Make a vault's key answers (`GET /keys/{name}[/{version}]`, create, import) carry the
    /// private JWK members [`keys::PRIVATE_JWK_MEMBERS`] beside the public ones, each valued
    /// `PRIVATE-<member>`, as a misbehaving vault might: for tests that a host hands out only
    /// public members, whatever the vault sends.
    pub fn set_key_answers_with_private_members(&self, vault: &str, on: bool) {
        if let Some(v) = self.state.vaults.get(vault) {
            v.private_key_members
                .store(on, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Change the lifetime of tokens minted from now on (0 = already expired).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.state.tokens.set_lifetime(secs)
    }

    /// Change Key Vault throttling at runtime.
    pub fn set_throttle(&self, throttle: ThrottleConfig) {
        if let Ok(mut t) = self.state.throttle.lock() {
            *t = throttle;
        }
    }

    /// Mint a token as the emulator would (for tests), for `resource` and an identity's object id.
    pub fn mint_token(&self, resource: &str, client_id: &str, object_id: &str) -> String {
        self.state.tokens.mint(resource, client_id, object_id).token
    }

    /// Mint a correctly signed token with another issuer (to test issuer checks).
    pub fn mint_token_with_issuer(&self, resource: &str, object_id: &str, issuer: &str) -> String {
        self.state
            .tokens
            .mint_with_issuer(resource, "test-client", object_id, issuer)
            .token
    }

    /// Writes one `export NAME=VALUE` line per variable a client needs (see [`Emulator::exports`]),
    /// shell-quoted, so that `eval "$(...)"` points a shell at this emulator.
    pub fn print_exports(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for (k, v) in self.exports() {
            writeln!(out, "export {k}={}", shell_quote(&v))?;
        }
        out.flush()
    }

    /// A human-readable summary of the endpoints, one per line.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let c = self.config();
        let _ = writeln!(
            s,
            "wasm-secrets emulator running on 127.0.0.1 (Ctrl-C to stop)"
        );
        let _ = writeln!(s, "  IMDS                {}", self.imds_base());
        let _ = writeln!(
            s,
            "  App Service 2019    {} (X-IDENTITY-HEADER)",
            self.app_service_endpoint()
        );
        let _ = writeln!(
            s,
            "  App Service 2017    {} (secret)",
            self.legacy_msi_endpoint()
        );
        let _ = writeln!(
            s,
            "  Azure Arc           {} (keys in {})",
            self.arc_identity_endpoint(),
            self.arc_token_dir().display()
        );
        let _ = writeln!(
            s,
            "  Entra               {} and {}",
            self.authority_host(),
            self.authority_host_http()
        );
        for v in &c.vaults {
            let _ = writeln!(
                s,
                "  Key Vault {:<9} {} ({} secrets, {} keys)",
                v.name,
                self.vault_url(&v.name).unwrap_or_default(),
                v.secrets.len(),
                v.keys.len()
            );
        }
        let _ = writeln!(s, "  CA certificate      {}", self.ca_cert_path().display());
        let _ = writeln!(s, "  admin               {}", self.admin_url());
        let _ = writeln!(s, "  tenant              {}", self.tenant_id());
        s
    }

    /// Stop every server and wait for the accept loops to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
        if let Ok(keys) = self.state.arc_keys.lock() {
            for (_, path) in keys.iter() {
                let _ = std::fs::remove_file(path);
            }
        }
        if let Some(d) = &self.owned_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Quote a value for a POSIX shell `export` line when needed.
pub fn shell_quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}
