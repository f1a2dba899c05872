//! The local secrets file: a TOML file of `name = "value"`, for development.
//!
//! ```toml
//! db-password = "correct horse battery staple"
//! api-key = "k-123"
//!
//! [payments]          # another vault, for grants such as payments/stripe-key
//! stripe-key = "sk_test_123"
//! ```
//!
//! Names are case-insensitive, as in Key Vault: `DB-Password` is found as `db-password`, and a
//! file naming one secret twice in different cases is refused.

use super::{Backend, Secret, SecretMeta};
use crate::name::{fold, is_valid_name};
use crate::{BackendError, SecretValue};
use futures::future::{BoxFuture, FutureExt};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The version every value in a secrets file has.
pub const FILE_VERSION: &str = "local";

/// One vault's secrets, read from a secrets file and held in zeroizing memory.
pub struct FileBackend {
    label: String,
    /// By folded name: the name as the file spells it, and the value.
    secrets: BTreeMap<String, (String, SecretValue)>,
}

impl std::fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBackend")
            .field("label", &self.label)
            .field(
                "names",
                &self.secrets.values().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FileBackend {
    /// A backend holding the given secrets. Of names that differ only in case, the last wins
    /// (as a second `PUT` to Key Vault would), under the first one's spelling.
    pub fn new(
        label: impl Into<String>,
        secrets: impl IntoIterator<Item = (String, SecretValue)>,
    ) -> Self {
        let mut held: BTreeMap<String, (String, SecretValue)> = BTreeMap::new();
        for (name, value) in secrets {
            let key = fold(&name).into_owned();
            match held.get_mut(&key) {
                Some((_, old)) => *old = value,
                None => {
                    held.insert(key, (name, value));
                }
            }
        }
        Self {
            label: label.into(),
            secrets: held,
        }
    }

    fn find(&self, name: &str) -> Option<&(String, SecretValue)> {
        self.secrets.get(&*fold(name))
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
        let mut seen: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
        let mut once = |vault: &str, name: &str| {
            let new = seen
                .entry(vault.to_owned())
                .or_default()
                .insert(fold(name).into_owned());
            anyhow::ensure!(
                new,
                "secrets file {origin}: {name} is named twice (names are case-insensitive, as in Key Vault)"
            );
            Ok(())
        };
        for (key, item) in table {
            match item {
                toml::Value::String(v) => {
                    check_name(origin, &key)?;
                    once(super::DEFAULT_VAULT, &key)?;
                    vaults
                        .entry(super::DEFAULT_VAULT.to_owned())
                        .or_default()
                        .push((key, SecretValue::new(v)));
                }
                toml::Value::Table(t) => {
                    check_name(origin, &key)?;
                    let entry = vaults.entry(key.clone()).or_default();
                    for (name, v) in t {
                        check_name(origin, &name)?;
                        once(&key, &name)?;
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
        let result = match (self.find(name), version) {
            (None, _) => Err(BackendError::NotFound(format!(
                "no such secret in {}",
                self.label
            ))),
            (Some(_), Some(v)) if !v.eq_ignore_ascii_case(FILE_VERSION) => {
                Err(BackendError::NotFound(format!(
                    "secrets files hold one version, \"{FILE_VERSION}\""
                )))
            }
            (Some((spelled, value)), _) => {
                Ok(Secret::new(value.clone(), FILE_VERSION).named(spelled.as_str()))
            }
        };
        futures::future::ready(result).boxed()
    }

    fn info<'a>(
        &'a self,
        name: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<SecretMeta, BackendError>> {
        let result = match (self.find(name), version) {
            (None, _) => Err(BackendError::NotFound(format!(
                "no such secret in {}",
                self.label
            ))),
            (Some(_), Some(v)) if v != FILE_VERSION => Err(BackendError::NotFound(format!(
                "secrets files hold one version, \"{FILE_VERSION}\""
            ))),
            (Some((spelled, _)), _) => Ok(SecretMeta {
                name: Some(spelled.clone()),
                version: FILE_VERSION.to_owned(),
                content_type: None,
                enabled: true,
                ..SecretMeta::default()
            }),
        };
        futures::future::ready(result).boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        futures::future::ready(Ok(self.secrets.values().map(|(n, _)| n.clone()).collect())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vaults_and_refuses_bad_names_without_echoing_values() {
        let v = FileBackend::parse("a = \"1\"\n[pay]\nk = \"2\"\n", "t").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v["pay"].find("K").is_some());
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
    fn names_are_case_insensitive_and_keep_the_files_spelling() {
        let v = FileBackend::parse("DB-Password = \"1\"\n", "t").unwrap();
        let b = &v["default"];
        for asked in ["db-password", "DB-PASSWORD"] {
            let s = futures::executor::block_on(b.get(asked, None)).unwrap();
            assert_eq!(s.value.expose(), "1");
            assert_eq!(s.name.as_deref(), Some("DB-Password"));
        }
        let e = FileBackend::parse("a = \"1\"\nA = \"2\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("named twice"), "{e}");
    }

    #[test]
    fn debug_shows_names_not_values() {
        let b = FileBackend::new("x", [("n".to_string(), SecretValue::from("topsecret"))]);
        let d = format!("{b:?}");
        assert!(d.contains("\"n\"") && !d.contains("topsecret"), "{d}");
    }
}
