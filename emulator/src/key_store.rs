//! The emulator's keys: versions, rights, and key material made on first use and kept.
//!
//! Key names are case-insensitive like secret names: held by their lowercase name, found in any
//! spelling, and answered (`kid`s, listings) as first created; version ids match in any case.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use crate::config::KeyConfig;
use crate::crypto::{CryptoError, Curve, KeyMaterial, KeyOp, KeySpec, KeyType};
use crate::token::{now, random_hex};

/// One version of a key. The private material is made on first use and kept.
#[derive(Debug)]
pub struct KeyVersion {
    /// 32 lowercase hex characters.
    pub id: String,
    /// What key this is.
    pub spec: KeySpec,
    /// Permitted operations.
    pub key_ops: Vec<KeyOp>,
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
    /// Tags.
    pub tags: BTreeMap<String, String>,
    material: OnceLock<Result<KeyMaterial, CryptoError>>,
}

impl KeyVersion {
    pub(crate) fn new(id: String, spec: KeySpec, key_ops: Vec<KeyOp>, enabled: bool) -> KeyVersion {
        let t = now();
        KeyVersion {
            id,
            spec,
            key_ops,
            enabled,
            nbf: None,
            exp: None,
            created: t,
            updated: t,
            tags: BTreeMap::new(),
            material: OnceLock::new(),
        }
    }

    /// The private material if it has been made (or failed to be).
    pub(crate) fn made(&self) -> Option<&Result<KeyMaterial, CryptoError>> {
        self.material.get()
    }

    /// Gives a new version the material it was created or imported with; false if it had some.
    pub(crate) fn set_material(&self, material: KeyMaterial) -> bool {
        self.material.set(Ok(material)).is_ok()
    }

    /// The private material, generated now (blocking; RSA takes a while) if not yet made.
    pub fn material(&self) -> Result<&KeyMaterial, CryptoError> {
        self.material
            .get_or_init(|| KeyMaterial::generate(self.spec))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The public JWK (with `kid` and `key_ops`) under a vault base URL.
    pub fn public_jwk(&self, base: &str, name: &str) -> Result<Value, CryptoError> {
        let mut jwk = self.material()?.public_jwk();
        jwk.insert(
            "kid".into(),
            json!(format!("{base}/keys/{name}/{}", self.id)),
        );
        let ops: Vec<&str> = self.key_ops.iter().map(|o| o.name()).collect();
        jwk.insert("key_ops".into(), json!(ops));
        Ok(Value::Object(jwk))
    }
}

/// A key: versions oldest first, and optional narrowed users.
#[derive(Debug, Default)]
pub struct StoredKey {
    /// The name as the key was first created (the store holds it by its lowercase name).
    pub name: String,
    /// Versions, oldest first (the last is the latest).
    pub versions: Vec<Arc<KeyVersion>>,
    /// When set, only these object ids may use the key.
    pub readers: Option<Vec<String>>,
}

/// One vault's keys, by lowercase name.
#[derive(Debug, Default)]
pub struct KeyStore {
    keys: Mutex<BTreeMap<String, StoredKey>>,
}

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl KeyStore {
    /// Build from config (no material is generated yet).
    pub fn from_config(keys: &[KeyConfig]) -> KeyStore {
        let mut map = BTreeMap::new();
        for k in keys {
            let spec = match (k.kty, k.crv) {
                (KeyType::Ec, Some(c)) => KeySpec::Ec(c),
                (KeyType::Ec, None) => KeySpec::Ec(Curve::P256),
                (KeyType::Rsa, _) => KeySpec::Rsa(k.size.unwrap_or(2048)),
            };
            let ops = k.key_ops.clone().unwrap_or_else(|| KeyOp::all_for(k.kty));
            let mk = |id: String, enabled: bool| {
                let mut v = KeyVersion::new(id, spec, ops.clone(), enabled);
                v.tags = k.tags.clone();
                Arc::new(v)
            };
            let versions = if k.versions.is_empty() {
                vec![mk(random_hex(16), k.enabled)]
            } else {
                k.versions
                    .iter()
                    .map(|v| mk(v.id.clone(), v.enabled.unwrap_or(k.enabled)))
                    .collect()
            };
            map.insert(
                fold(&k.name),
                StoredKey {
                    name: k.name.clone(),
                    versions,
                    readers: k.readers.clone(),
                },
            );
        }
        KeyStore {
            keys: Mutex::new(map),
        }
    }

    /// A version: `None` or an empty version means the latest.
    pub fn find(&self, name: &str, version: Option<&str>) -> Option<Arc<KeyVersion>> {
        let keys = self.keys.lock().ok()?;
        let k = keys.get(&fold(name))?;
        match version.filter(|v| !v.is_empty()) {
            None => k.versions.last().cloned(),
            Some(v) => k
                .versions
                .iter()
                .find(|x| x.id.eq_ignore_ascii_case(v))
                .cloned(),
        }
    }

    /// The name of key `name` as it was first created; `name` itself if there is none.
    pub fn spelling(&self, name: &str) -> String {
        self.keys
            .lock()
            .ok()
            .and_then(|k| k.get(&fold(name)).map(|k| k.name.clone()))
            .unwrap_or_else(|| name.to_string())
    }

    /// Every version of a key, oldest first.
    pub fn versions(&self, name: &str) -> Option<Vec<Arc<KeyVersion>>> {
        self.keys
            .lock()
            .ok()?
            .get(&fold(name))
            .map(|k| k.versions.clone())
    }

    /// The latest version of every key, by name.
    pub fn latest(&self) -> Vec<(String, Arc<KeyVersion>)> {
        match self.keys.lock() {
            Ok(k) => k
                .values()
                .filter_map(|k| k.versions.last().map(|v| (k.name.clone(), v.clone())))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether `oid` may use the key: its narrowed readers, else the vault's readers.
    pub fn can_use(&self, vault_readers: &[String], name: &str, oid: &str) -> bool {
        let narrowed = self
            .keys
            .lock()
            .ok()
            .and_then(|k| k.get(&fold(name)).and_then(|k| k.readers.clone()));
        match narrowed {
            Some(r) => r.iter().any(|x| x == oid),
            None => vault_readers.iter().any(|x| x == oid),
        }
    }

    /// Add a version (creating the key if needed).
    pub fn add(&self, name: &str, v: KeyVersion) -> Option<Arc<KeyVersion>> {
        let v = Arc::new(v);
        let mut keys = self.keys.lock().ok()?;
        keys.entry(fold(name))
            .or_insert_with(|| StoredKey {
                name: name.to_string(),
                ..StoredKey::default()
            })
            .versions
            .push(v.clone());
        Some(v)
    }
}
