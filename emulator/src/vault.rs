//! The emulator's vaults as data: secrets with their versions, keys, who may read and write,
//! and the throttle window. The REST handlers over them are [`crate::keyvault`] and
//! [`crate::keys`].
//!
//! Names are case-insensitive, as in Key Vault: secrets are held by their lowercase name and
//! answered with the name as the secret was first created.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::VaultConfig;
use crate::key_store::KeyStore;
use crate::token::{now, random_hex};

/// One stored version of a secret.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    /// 32 lowercase hex characters.
    pub id: String,
    /// The value.
    pub value: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Enabled.
    pub enabled: bool,
    /// Not before (epoch seconds).
    pub nbf: Option<u64>,
    /// Expiry (epoch seconds).
    pub exp: Option<u64>,
    /// Created (epoch seconds).
    pub created: u64,
    /// Updated (epoch seconds).
    pub updated: u64,
}

/// A secret: versions oldest first, and optional narrowed readers.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    /// The name as the secret was first created (the map holds it by its lowercase name).
    pub name: String,
    /// Versions, oldest first (the last is the latest).
    pub versions: Vec<StoredVersion>,
    /// When set, only these object ids may read it.
    pub readers: Option<Vec<String>>,
}

/// One vault's state.
#[derive(Debug)]
pub struct Vault {
    /// Secrets by lowercase name (see [`StoredSecret::name`] for the spelling).
    pub secrets: Mutex<BTreeMap<String, StoredSecret>>,
    /// Keys by name.
    pub keys: KeyStore,
    /// Object ids with read (and list) rights on the whole vault.
    pub readers: Vec<String>,
    /// Object ids with write rights.
    pub writers: Vec<String>,
    /// Delay added to every answer.
    pub latency: Mutex<Duration>,
    /// When set, key answers (`GET /keys/...`) carry private JWK members, as a misbehaving
    /// vault might (see [`crate::Emulator::set_key_answers_with_private_members`]).
    pub private_key_members: AtomicBool,
    /// Throttle window: (start, requests in it).
    pub window: Mutex<(Instant, u64)>,
}

impl Vault {
    /// Build a vault from its config.
    pub fn from_config(c: &VaultConfig) -> Vault {
        let t = now();
        let mut secrets = BTreeMap::new();
        for s in &c.secrets {
            let mk = |value: &str, enabled: bool, id: Option<&String>| StoredVersion {
                id: id.cloned().unwrap_or_else(|| random_hex(16)),
                value: value.to_string(),
                content_type: s.content_type.clone(),
                tags: s.tags.clone(),
                enabled,
                nbf: None,
                exp: None,
                created: t,
                updated: t,
            };
            let versions = match &s.value {
                Some(v) => vec![mk(v, s.enabled.unwrap_or(true), None)],
                None => s
                    .versions
                    .iter()
                    .map(|v| StoredVersion {
                        content_type: v.content_type.clone().or_else(|| s.content_type.clone()),
                        tags: v.tags.clone().unwrap_or_else(|| s.tags.clone()),
                        ..mk(&v.value, v.enabled, v.id.as_ref())
                    })
                    .collect(),
            };
            secrets.insert(
                s.name.to_ascii_lowercase(),
                StoredSecret {
                    name: s.name.clone(),
                    versions,
                    readers: s.readers.clone(),
                },
            );
        }
        Vault {
            secrets: Mutex::new(secrets),
            keys: KeyStore::from_config(&c.keys),
            readers: c.readers.clone(),
            writers: c.writers.clone(),
            latency: Mutex::new(Duration::ZERO),
            private_key_members: AtomicBool::new(false),
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Add a version (creating the secret if needed); returns the version id.
    pub fn put(
        &self,
        name: &str,
        value: &str,
        content_type: Option<String>,
        tags: BTreeMap<String, String>,
        attrs: &PutAttributes,
    ) -> Option<StoredVersion> {
        let t = now();
        let v = StoredVersion {
            id: random_hex(16),
            value: value.to_string(),
            content_type,
            tags,
            enabled: attrs.enabled.unwrap_or(true),
            nbf: attrs.nbf,
            exp: attrs.exp,
            created: t,
            updated: t,
        };
        let mut s = self.secrets.lock().ok()?;
        s.entry(name.to_ascii_lowercase())
            .or_insert_with(|| StoredSecret {
                name: name.to_string(),
                versions: Vec::new(),
                readers: None,
            })
            .versions
            .push(v.clone());
        Some(v)
    }

    /// The name of secret `name` as it was first created; `name` itself if there is none.
    pub fn spelling(&self, name: &str) -> String {
        self.secrets
            .lock()
            .ok()
            .and_then(|s| s.get(&name.to_ascii_lowercase()).map(|s| s.name.clone()))
            .unwrap_or_else(|| name.to_string())
    }

    /// Enable or disable a secret's latest version.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> bool {
        let Ok(mut s) = self.secrets.lock() else {
            return false;
        };
        match s
            .get_mut(&name.to_ascii_lowercase())
            .and_then(|s| s.versions.last_mut())
        {
            Some(v) => {
                v.enabled = enabled;
                v.updated = now();
                true
            }
            None => false,
        }
    }
}

/// Attributes accepted in a PUT body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutAttributes {
    /// Enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Expiry.
    #[serde(default)]
    pub exp: Option<u64>,
}
