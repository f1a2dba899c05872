//! Key Vault's JSON shapes (the parts we read).

use crate::backend::SecretMeta;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `GET /secrets/{name}/{version}`.
#[derive(Deserialize)]
pub struct SecretBundle {
    pub value: Option<crate::SecretValue>,
    pub id: String,
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// Secret attributes; times are Unix seconds.
#[derive(Deserialize, Default)]
pub struct Attributes {
    pub enabled: Option<bool>,
    pub nbf: Option<u64>,
    pub exp: Option<u64>,
    pub created: Option<u64>,
    pub updated: Option<u64>,
}

/// One page of `GET /secrets` or `GET /secrets/{name}/versions`.
#[derive(Deserialize)]
pub struct Page {
    #[serde(default)]
    pub value: Vec<Item>,
    #[serde(rename = "nextLink")]
    pub next_link: Option<String>,
}

/// An item of a page (no value): a secret's, or one version's, metadata.
#[derive(Deserialize)]
pub struct Item {
    pub id: String,
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// The path segments of a Key Vault id after `/secrets/`: `(name, version)`.
pub fn id_parts(id: &str) -> Option<(String, Option<String>)> {
    collection_id_parts(id, "secrets")
}

/// `(name, version)` of a key id such as `https://v.vault.azure.net/keys/name/version`.
pub fn key_id_parts(id: &str) -> Option<(String, Option<String>)> {
    collection_id_parts(id, "keys")
}

fn collection_id_parts(id: &str, collection: &str) -> Option<(String, Option<String>)> {
    let url = url::Url::parse(id).ok()?;
    let mut segs = url.path_segments()?;
    if segs.next()? != collection {
        return None;
    }
    let name = segs.next().filter(|n| !n.is_empty())?.to_owned();
    let version = segs.next().filter(|v| !v.is_empty()).map(str::to_owned);
    Some((name, version))
}

impl SecretBundle {
    /// The metadata part.
    pub fn meta(&self) -> SecretMeta {
        meta(
            &self.id,
            &self.content_type,
            &self.attributes,
            self.tags.as_ref(),
        )
    }
}

impl Item {
    /// The metadata it lists.
    pub fn meta(&self) -> SecretMeta {
        meta(
            &self.id,
            &self.content_type,
            &self.attributes,
            self.tags.as_ref(),
        )
    }
}

fn meta(
    id: &str,
    content_type: &Option<String>,
    attributes: &Attributes,
    tags: Option<&BTreeMap<String, String>>,
) -> SecretMeta {
    SecretMeta {
        name: id_parts(id).map(|(n, _)| n),
        version: id_parts(id).and_then(|(_, v)| v).unwrap_or_default(),
        content_type: content_type.clone(),
        enabled: attributes.enabled.unwrap_or(true),
        not_before: attributes.nbf,
        expires: attributes.exp,
        created: attributes.created,
        updated: attributes.updated,
        tags: tags.cloned().unwrap_or_default().into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(
            id_parts("https://v.vault.azure.net/secrets/db/abc123"),
            Some(("db".into(), Some("abc123".into())))
        );
        assert_eq!(
            id_parts("https://v.vault.azure.net/secrets/db"),
            Some(("db".into(), None))
        );
        assert_eq!(id_parts("https://v.vault.azure.net/keys/db"), None);
    }
}
