//! The local secrets file: a TOML file of `name = "value"`, for development.
//!
//! ```toml
//! db-password = "correct horse battery staple"
//! api-key = "k-123"
//!
//! [payments]          # another vault, for grants such as payments/stripe-key
//! stripe-key = "sk_test_123"
//! ```

use super::{Backend, Secret, SecretMeta};
use crate::name::is_valid_name;
use crate::{BackendError, SecretValue};
use futures::future::{BoxFuture, FutureExt};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The version every value in a secrets file has.
pub const FILE_VERSION: &str = "local";

/// One vault's secrets, read from a secrets file and held in zeroizing memory.
pub struct FileBackend {
    label: String,
    secrets: BTreeMap<String, SecretValue>,
}

impl std::fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBackend")
            .field("label", &self.label)
            .field("names", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FileBackend {
    /// A backend holding the given secrets.
    pub fn new(
        label: impl Into<String>,
        secrets: impl IntoIterator<Item = (String, SecretValue)>,
    ) -> Self {
        Self {
            label: label.into(),
            secrets: secrets.into_iter().collect(),
        }
    }

    /// Reads a secrets file: top-level strings are the default vault, tables are other vaults.
    /// Returns one backend per vault name.
    pub fn load_file(path: &Path) -> anyhow::Result<HashMap<String, FileBackend>> {
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read secrets file {}: {e}", path.display())
            })?);
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses secrets-file text. `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<HashMap<String, FileBackend>> {
        // toml's own errors quote the offending line, which could hold a value: report only
        // where it failed.
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| format!(" at line {}", text[..s.start].lines().count().max(1)))
                .unwrap_or_default();
            anyhow::anyhow!(
                "secrets file {origin} is not valid TOML{at}; expected lines of name = \"value\""
            )
        })?;
        let mut vaults: HashMap<String, Vec<(String, SecretValue)>> = HashMap::new();
        for (key, item) in table {
            match item {
                toml::Value::String(v) => {
                    check_name(origin, &key)?;
                    vaults
                        .entry(crate::grants::DEFAULT_VAULT.to_owned())
                        .or_default()
                        .push((key, SecretValue::new(v)));
                }
                toml::Value::Table(t) => {
                    check_name(origin, &key)?;
                    let entry = vaults.entry(key.clone()).or_default();
                    for (name, v) in t {
                        check_name(origin, &name)?;
                        match v {
                            toml::Value::String(v) => entry.push((name, SecretValue::new(v))),
                            _ => anyhow::bail!(
                                "secrets file {origin}: {key}.{name} must be a string"
                            ),
                        }
                    }
                }
                _ => anyhow::bail!(
                    "secrets file {origin}: {key} must be a string (a secret) or a table (a vault)"
                ),
            }
        }
        Ok(vaults
            .into_iter()
            .map(|(vault, secrets)| {
                let label = format!("secrets file {origin} [{vault}]");
                (vault, FileBackend::new(label, secrets))
            })
            .collect())
    }
}

fn check_name(origin: &str, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_valid_name(name),
        "secrets file {origin}: {} is not a valid name (1 to 127 characters of 0-9, A-Z, a-z and -)",
        crate::name::quoted(name)
    );
    Ok(())
}

impl Backend for FileBackend {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn get<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Secret, BackendError>> {
        let result = match (self.secrets.get(name), version) {
            (None, _) => Err(BackendError::NotFound(format!(
                "no such secret in {}",
                self.label
            ))),
            (Some(_), Some(v)) if v != FILE_VERSION => Err(BackendError::NotFound(format!(
                "secrets files hold one version, \"{FILE_VERSION}\""
            ))),
            (Some(value), _) => Ok(Secret::new(value.clone(), FILE_VERSION)),
        };
        futures::future::ready(result).boxed()
    }

    fn info<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
        let result = match (self.secrets.get(name), version) {
            (None, _) => Err(BackendError::NotFound(format!(
                "no such secret in {}",
                self.label
            ))),
            (Some(_), Some(v)) if v != FILE_VERSION => Err(BackendError::NotFound(format!(
                "secrets files hold one version, \"{FILE_VERSION}\""
            ))),
            (Some(_), _) => Ok(SecretMeta {
                version: FILE_VERSION.to_owned(),
                content_type: None,
                enabled: true,
                ..SecretMeta::default()
            }),
        };
        futures::future::ready(result).boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        futures::future::ready(Ok(self.secrets.keys().cloned().collect())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vaults_and_refuses_bad_names_without_echoing_values() {
        let v = FileBackend::parse("a = \"1\"\n[pay]\nk = \"2\"\n", "t").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v["pay"].secrets.contains_key("k"));
        let e = FileBackend::parse("\"a/b\" = \"topsecret\"", "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a valid name") && !e.contains("topsecret"),
            "{e}"
        );
        let e = FileBackend::parse("a = \"topsecret", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && !e.contains("topsecret"), "{e}");
        let e = FileBackend::parse("a = 5", "t").unwrap_err().to_string();
        assert!(e.contains("must be a string"), "{e}");
    }

    #[test]
    fn debug_shows_names_not_values() {
        let b = FileBackend::new("x", [("n".to_string(), SecretValue::from("topsecret"))]);
        let d = format!("{b:?}");
        assert!(d.contains("\"n\"") && !d.contains("topsecret"), "{d}");
    }
}
