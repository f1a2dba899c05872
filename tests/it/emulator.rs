//! The Azure emulator in-process, and host vaults pointed at it.
//!
//! Every test starts its own emulator (its own ports, counters, faults and CA) and builds its
//! own host vaults through the real [`Connector`], with an [`Env`] map that points the chosen
//! credential at the emulator: nothing is read from the process environment, so tests can run
//! in parallel. Every HTTP client is loopback-only.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasm_secrets::audit::JsonLines;
use wasm_secrets::backend::keyvault::{KeyVault, KeyVaultOptions};
use wasm_secrets::cache::CacheConfig;
use wasm_secrets::cache::CachedBackend;
use wasm_secrets::connect::{Connector, VaultSettings};
use wasm_secrets::credential::CredentialKind;
use wasm_secrets::credential::imds::ImdsCredential;
use wasm_secrets::credential::{Env, RetryPolicy, UserAssigned, UserAssignedId};
use wasm_secrets::http::HttpClient;
use wasm_secrets::token_cache::TokenCache;
use wasm_secrets::{Grants, SecretsCtx, Vaults};
pub use wasm_secrets_emulator::{Emulator, EmulatorConfig, Endpoint, Fault};

/// The resource Key Vault's challenge names.
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";

/// Values of the secrets in `emulator/emulator.toml`.
pub const DB_PASSWORD: &str = "s3cr3t-db-password";
pub const API_KEY: &str = "api-key-value-42";
pub const RESTRICTED: &str = "restricted-value";
pub const DISABLED: &str = "you-should-not-see-this";
pub const STRIPE_KEY: &str = "sk_test_emulator_4eC39HqLyjWDarjtT1zdp7dc";

/// Every value in the default emulator config: none may show up where it should not.
pub const ALL_VALUES: &[&str] = &[
    DB_PASSWORD,
    "old-db-password",
    API_KEY,
    RESTRICTED,
    DISABLED,
    STRIPE_KEY,
];

/// An emulator with the default config (`emulator/emulator.toml`).
pub async fn start() -> Emulator {
    start_with(|_| {}).await
}

/// An emulator with the default config as changed by `tweak`.
pub async fn start_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut config = EmulatorConfig::default();
    tweak(&mut config);
    Emulator::start(config).await.expect("start the emulator")
}

/// Key Vault options with short backoffs, so fault tests take milliseconds.
pub fn fast_options() -> KeyVaultOptions {
    let ms = Duration::from_millis;
    KeyVaultOptions {
        throttle_backoff: vec![ms(20), ms(40), ms(80)],
        error_backoff: vec![ms(10), ms(20)],
        max_retry_after: Duration::from_secs(2),
        ..KeyVaultOptions::default()
    }
}

/// A secret cache that keeps values for the whole test.
pub fn long_cache() -> CacheConfig {
    CacheConfig::default()
}

/// Which identity the host uses, and the environment that points it at the emulator.
#[derive(Debug, Clone)]
pub struct Identity {
    pub kind: CredentialKind,
    pub user: UserAssigned,
    pub env: Env,
}

impl Identity {
    /// IMDS, system-assigned (`AZURE_POD_IDENTITY_AUTHORITY_HOST` names the emulator).
    pub fn imds(emu: &Emulator) -> Self {
        Self::managed(Env::from_pairs([(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            emu.imds_base(),
        )]))
    }

    /// App Service / Functions (2019-08-01), system-assigned.
    pub fn app_service(emu: &Emulator) -> Self {
        Self::managed(Env::from_pairs([
            ("IDENTITY_ENDPOINT", emu.app_service_endpoint()),
            ("IDENTITY_HEADER", emu.app_service_header()),
        ]))
    }

    /// Legacy App Service (2017-09-01, `MSI_ENDPOINT` + `MSI_SECRET`), system-assigned.
    pub fn legacy_app_service(emu: &Emulator) -> Self {
        Self::managed(Env::from_pairs([
            ("MSI_ENDPOINT", emu.legacy_msi_endpoint()),
            ("MSI_SECRET", emu.legacy_msi_secret()),
        ]))
    }

    /// Azure Arc, with key files expected in `token_dir`.
    pub fn arc(emu: &Emulator, token_dir: &Path) -> Self {
        Self::managed(Env::from_pairs([
            ("IDENTITY_ENDPOINT", emu.arc_identity_endpoint()),
            ("IMDS_ENDPOINT", emu.arc_imds_endpoint()),
            (
                "WASM_SECRETS_ARC_TOKEN_DIR",
                token_dir.display().to_string(),
            ),
        ]))
    }

    /// Workload identity: the federated client `client_id` asserting with `token_file`.
    pub fn workload(emu: &Emulator, client_id: &str, token_file: &Path) -> Self {
        Self {
            kind: CredentialKind::WorkloadIdentity,
            user: UserAssigned::default(),
            env: Env::from_pairs([
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
                ("AZURE_CLIENT_ID", client_id.to_owned()),
                ("AZURE_TENANT_ID", emu.tenant_id()),
                ("AZURE_AUTHORITY_HOST", emu.authority_host()),
            ]),
        }
    }

    /// A service principal's client secret.
    pub fn client_secret(emu: &Emulator, client_id: &str, secret: &str) -> Self {
        Self {
            kind: CredentialKind::ClientSecret,
            user: UserAssigned::default(),
            env: Env::from_pairs([
                ("AZURE_CLIENT_ID", client_id.to_owned()),
                ("AZURE_CLIENT_SECRET", secret.to_owned()),
                ("AZURE_TENANT_ID", emu.tenant_id()),
                ("AZURE_AUTHORITY_HOST", emu.authority_host()),
            ]),
        }
    }

    fn managed(env: Env) -> Self {
        Self {
            kind: CredentialKind::ManagedIdentity,
            user: UserAssigned::default(),
            env,
        }
    }

    /// The same source with a user-assigned identity.
    pub fn user(mut self, user: UserAssigned) -> Self {
        self.user = user;
        self
    }
}

/// Selects a user-assigned identity by client id.
pub fn by_client_id(id: &str) -> UserAssigned {
    UserAssigned {
        client_id: Some(id.to_owned()),
        ..UserAssigned::default()
    }
}

/// The emulator's user-assigned identity, selected by each of its three ids.
pub fn user_assigned_selectors(emu: &Emulator) -> Vec<(&'static str, UserAssigned)> {
    let u = &emu.config().identities.user_assigned[0];
    vec![
        ("client_id", by_client_id(&u.client_id)),
        (
            "object_id",
            UserAssigned {
                object_id: Some(u.object_id.clone()),
                ..UserAssigned::default()
            },
        ),
        (
            "resource_id",
            UserAssigned {
                resource_id: Some(u.resource_id.clone()),
                ..UserAssigned::default()
            },
        ),
    ]
}

/// The emulator's vaults as the host names them: its `main` vault is the host's `default`.
pub fn vault_names() -> [(&'static str, &'static str); 2] {
    [("default", "main"), ("payments", "payments")]
}

/// Host vaults `default` and `payments` for the emulator, built by the real [`Connector`].
pub fn connect(
    emu: &Emulator,
    id: &Identity,
    cache: CacheConfig,
    options: KeyVaultOptions,
) -> Vaults {
    try_connect(emu, id, cache, options).expect("build vaults for the emulator")
}

/// [`connect`], returning the error instead of panicking.
pub fn try_connect(
    emu: &Emulator,
    id: &Identity,
    cache: CacheConfig,
    options: KeyVaultOptions,
) -> anyhow::Result<Vaults> {
    let connector = Connector::new(id.env.clone(), cache)
        .loopback_only(true)
        .with_options(options);
    let mut vaults = Vaults::new();
    for (host_name, emu_name) in vault_names() {
        let settings = VaultSettings {
            url: emu
                .vault_url(emu_name)
                .expect("the emulator has this vault"),
            credential: id.kind,
            identity: id.user.clone(),
            ca_cert: Some(emu.ca_cert_path()),
            api_version: None,
        };
        vaults.insert(host_name, Arc::new(connector.key_vault(&settings)?));
    }
    Ok(vaults)
}

/// Default vaults over system-assigned IMDS with fast retries and a long cache.
pub fn imds_vaults(emu: &Emulator) -> Vaults {
    connect(emu, &Identity::imds(emu), long_cache(), fast_options())
}

/// A loopback-only HTTP client trusting the emulator's CA.
pub fn http(emu: &Emulator) -> HttpClient {
    HttpClient::builder()
        .loopback_only(true)
        .extra_ca(emu.ca_cert_path())
        .build()
        .expect("http client")
}

/// An IMDS retry policy small enough for tests: 10 ms doubling to 40 ms, 410s for `gone_window`.
pub fn quick_retry(max_retries: u32, gone_window: Duration) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        gone_window,
        attempt_timeout: Duration::from_millis(300),
    }
}

/// The host's `default` vault over IMDS with `retry` (built by hand: the [`Connector`] always
/// uses the default policy, whose backoffs take seconds).
pub fn imds_vault_with_retry(
    emu: &Emulator,
    retry: RetryPolicy,
    id: Option<UserAssignedId>,
) -> Vaults {
    let http = http(emu);
    let mut imds =
        ImdsCredential::new(http.clone(), &emu.imds_base(), id).expect("imds credential");
    imds.retry = retry;
    let tokens = Arc::new(TokenCache::new(Arc::new(imds)));
    let vault =
        KeyVault::new(&emu.default_vault_url(), http, tokens, fast_options()).expect("key vault");
    Vaults::new().with("default", CachedBackend::new(Arc::new(vault), long_cache()))
}

/// A secrets context for `grants` over `vaults`.
pub fn ctx(grants: &[&str], vaults: Vaults) -> SecretsCtx {
    SecretsCtx::new("azure-test", Grants::parse(grants).expect("grants"), vaults)
}

/// Runs `secrets-get` with `grants` over `vaults`; returns its exit code and output lines.
pub async fn secrets_get(grants: &[&str], vaults: Vaults, args: &[&str]) -> (i32, Vec<String>) {
    let (code, out) = crate::harness::run_guest("secrets-get", grants, vaults, args).await;
    (code, out.lines().map(str::to_owned).collect())
}

/// The error kind in a `secrets-get` failure line `NAME: <kind>: <message>`, if it is one.
pub fn error_kind<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.strip_prefix(name)?
        .strip_prefix(": ")?
        .split(':')
        .next()
}

/// An audit sink collecting JSON lines in memory.
#[derive(Clone, Default)]
pub struct AuditBuffer(Arc<Mutex<Vec<u8>>>);

impl AuditBuffer {
    /// A JSON-lines sink writing into this buffer.
    pub fn sink(&self) -> Arc<JsonLines> {
        Arc::new(JsonLines::new(Box::new(self.clone())))
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("audit log is UTF-8")
    }

    /// The events so far, parsed.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
            .collect()
    }
}

impl std::io::Write for AuditBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `n` copies of a fault.
pub fn repeat(fault: Fault, n: usize) -> Vec<Fault> {
    vec![fault; n]
}

/// A status fault without `Retry-After`.
pub fn status(code: u16) -> Fault {
    Fault::Status {
        status: code,
        retry_after: None,
        body: None,
    }
}
