//! Helpers shared by the emulator's integration tests: start an emulator, a client trusting its CA.
#![allow(dead_code)]

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use wasm_secrets_emulator::{Emulator, EmulatorConfig};

/// The demo config's identities.
pub struct Ids {
    pub system_client: String,
    pub system_object: String,
    pub ua_client: String,
    pub ua_object: String,
    pub ua_resource: String,
    pub sp_client: String,
    pub sp_secret: String,
    pub fed_client: String,
    pub fed_assertion: String,
}

pub fn ids(c: &EmulatorConfig) -> Ids {
    let i = &c.identities;
    Ids {
        system_client: i.system.client_id.clone(),
        system_object: i.system.object_id.clone(),
        ua_client: i.user_assigned[0].client_id.clone(),
        ua_object: i.user_assigned[0].object_id.clone(),
        ua_resource: i.user_assigned[0].resource_id.clone(),
        sp_client: i.service_principals[0].client_id.clone(),
        sp_secret: i.service_principals[0].client_secret.clone(),
        fed_client: i.federated[0].client_id.clone(),
        fed_assertion: i.federated[0].assertion.clone(),
    }
}

pub async fn start() -> Emulator {
    start_with(EmulatorConfig::default()).await
}

pub async fn start_with(c: EmulatorConfig) -> Emulator {
    Emulator::start(c).await.expect("emulator starts")
}

/// A reqwest client trusting only the emulator's CA, with no proxy.
pub fn client(emu: &Emulator) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(emu.ca_cert_pem().as_bytes()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("client")
}

pub const VAULT: &str = "https://vault.azure.net";

/// An IMDS token for the system identity (or a resource of choice).
pub async fn imds_token(
    emu: &Emulator,
    http: &reqwest::Client,
    resource: &str,
    extra: &str,
) -> String {
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}{extra}",
        emu.imds_base()
    );
    let r = http
        .get(url)
        .header("Metadata", "true")
        .send()
        .await
        .expect("imds");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    v["access_token"].as_str().expect("token").to_string()
}

pub async fn json_of(r: reqwest::Response) -> (u16, serde_json::Value) {
    let s = r.status().as_u16();
    let t = r.text().await.expect("body");
    (
        s,
        serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t)),
    )
}
