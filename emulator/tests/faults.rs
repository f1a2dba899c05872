//! Fault injection, counters, the admin endpoint, robustness against malformed requests, and the binary.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasm_secrets_emulator::{Endpoint, Fault};

fn imds_url(emu: &wasm_secrets_emulator::Emulator) -> String {
    format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={VAULT}",
        emu.imds_base()
    )
}

#[tokio::test]
async fn every_fault_kind_then_normal() {
    let emu = start().await;
    let http = client(&emu);
    let url = imds_url(&emu);
    emu.set_faults(
        Endpoint::Imds,
        vec![
            Fault::Status {
                status: 503,
                retry_after: Some(7),
                body: None,
            },
            Fault::Status {
                status: 410,
                retry_after: None,
                body: Some("gone".into()),
            },
            Fault::Delay(Duration::from_millis(200)),
            Fault::MalformedBody,
            Fault::OversizedBody(100_000),
            Fault::DropConnection,
        ],
    );
    let r = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "7");
    let r = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(r.text().await.unwrap(), "gone");
    let t = Instant::now();
    let r = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    let r = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap()).is_err());
    let r = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 100_000);
    assert!(
        http.get(&url)
            .header("Metadata", "true")
            .send()
            .await
            .is_err(),
        "dropped"
    );
    let r = http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "normal after the sequence");
    assert_eq!(emu.count(Endpoint::Imds), 7);
    emu.reset_counters();
    assert_eq!(emu.count(Endpoint::Imds), 0);
}

#[tokio::test]
async fn faults_per_endpoint_and_vault_counts() {
    let emu = start().await;
    let http = client(&emu);
    let tok = imds_token(&emu, &http, VAULT, "").await;
    emu.set_faults(
        Endpoint::KeyVault,
        vec![Fault::Status {
            status: 500,
            retry_after: None,
            body: None,
        }],
    );
    let url = format!(
        "{}/secrets/api-key?api-version=7.5",
        emu.default_vault_url()
    );
    assert_eq!(
        http.get(&url)
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
    assert_eq!(
        http.get(&url)
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(emu.vault_count("main"), 2);
    assert_eq!(emu.count(Endpoint::KeyVault), 2);
    for (e, url) in [
        (
            Endpoint::AppService,
            format!(
                "{}?api-version=2019-08-01&resource={VAULT}",
                emu.app_service_endpoint()
            ),
        ),
        (
            Endpoint::AppServiceLegacy,
            format!(
                "{}?api-version=2017-09-01&resource={VAULT}",
                emu.legacy_msi_endpoint()
            ),
        ),
        (
            Endpoint::Arc,
            format!(
                "{}?api-version=2020-06-01&resource={VAULT}",
                emu.arc_identity_endpoint()
            ),
        ),
        (
            Endpoint::Entra,
            format!(
                "{}/{}/oauth2/v2.0/token",
                emu.authority_host(),
                emu.tenant_id()
            ),
        ),
    ] {
        emu.set_faults(
            e,
            vec![Fault::Status {
                status: 429,
                retry_after: Some(1),
                body: None,
            }],
        );
        assert_eq!(http.get(&url).send().await.unwrap().status(), 429, "{e:?}");
        assert_ne!(http.get(&url).send().await.unwrap().status(), 429, "{e:?}");
        assert_eq!(emu.count(e), 2, "{e:?}");
    }
}

#[tokio::test]
async fn admin_endpoint() {
    let emu = start().await;
    let http = client(&emu);
    let admin = emu.admin_url();
    let r = http
        .put(format!("{admin}/faults/imds"))
        .body(r#"[{"kind":"status","status":503,"retry-after":2},{"kind":"drop"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let url = imds_url(&emu);
    assert_eq!(
        http.get(&url)
            .header("Metadata", "true")
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert!(
        http.get(&url)
            .header("Metadata", "true")
            .send()
            .await
            .is_err()
    );
    let (s, v) = json_of(http.get(format!("{admin}/counters")).send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(v["imds"], 2);
    assert_eq!(
        http.post(format!("{admin}/counters/reset"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(emu.count(Endpoint::Imds), 0);
    assert_eq!(
        http.put(format!("{admin}/faults/nope"))
            .body("[]")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        http.put(format!("{admin}/faults/imds"))
            .body("[{\"kind\":\"x\"}]")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        http.put(format!("{admin}/token-lifetime"))
            .body(r#"{"secs":5}"#)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        http.put(format!("{admin}/vaults/main/latency"))
            .body(r#"{"ms":0}"#)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        http.get(format!("{admin}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn raw_exchange(port_url: &str, bytes: &[u8]) -> Vec<u8> {
    let addr = port_url.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

#[tokio::test]
async fn survives_malformed_requests() {
    let emu = start().await;
    let http = client(&emu);
    let imds = emu.imds_base();
    // Bytes that are not HTTP, and a header line without a colon: 400, then the close.
    for garbage in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
    ] {
        let out = raw_exchange(&imds, garbage).await;
        assert!(
            out.starts_with(b"HTTP/1.1 400"),
            "{:?}: {}",
            String::from_utf8_lossy(garbage),
            String::from_utf8_lossy(&out)
        );
    }
    let out = raw_exchange(&imds, b"GET /metadata/identity/oauth2/token?resource=%ZZ&api-version=1 HTTP/1.1\r\nHost: x\r\nMetadata: \xff\xfe\r\nConnection: close\r\n\r\n").await;
    assert!(
        out.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // The TLS port fed plain text: no HTTP answer at all (the handshake fails and it closes).
    let vault = emu.default_vault_url().replace("https://", "http://");
    let out = raw_exchange(&vault, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(
        !out.windows(5).any(|w| w == b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A body past the 1 MiB cap is refused with 413. The request announces 2 MiB and sends a
    // little more than the cap, so the server has read every byte sent when it answers.
    let entra = emu.authority_host_http();
    let mut big = format!(
        "POST /{}/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        emu.tenant_id(),
        2 * 1024 * 1024
    )
    .into_bytes();
    big.extend(std::iter::repeat_n(b'a', 1024 * 1024 + 1024));
    let out = raw_exchange(&entra, &big).await;
    assert!(
        out.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // bad JSON to the admin endpoint and KV PUT are 400s (covered elsewhere); still serving:
    assert_eq!(
        http.get(imds_url(&emu))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let tok = imds_token(&emu, &http, VAULT, "").await;
    let r = http
        .get(format!(
            "{}/secrets/api-key?api-version=7.5",
            emu.default_vault_url()
        ))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn binary_prints_exports_first_and_rejects_bad_config() {
    use std::io::BufRead;
    let exe = env!("CARGO_BIN_EXE_wasm-secrets-emulator");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "bogus = 1\n").unwrap();
    let out = std::process::Command::new(exe)
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("bogus"), "{err}");

    let ca = dir.path().join("ca.pem");
    let mut child = std::process::Command::new(exe)
        .arg("--ca-cert-out")
        .arg(&ca)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<String> = std::io::BufReader::new(stdout)
        .lines()
        .take(7)
        .map(|l| l.unwrap())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("export ")
                .unwrap()
                .split('=')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
            "AZURE_AUTHORITY_HOST",
            "AZURE_TENANT_ID",
            "WASM_SECRETS_VAULT",
            "WASM_SECRETS_CA_CERT"
        ]
    );
    assert!(lines[6].ends_with(&ca.display().to_string()));
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
}

#[test]
fn shell_quoting() {
    use wasm_secrets_emulator::shell_quote;
    assert_eq!(shell_quote("http://127.0.0.1:80"), "http://127.0.0.1:80");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
}

#[tokio::test]
async fn reset_stall_challenge_and_standing_faults() {
    let emu = start().await;
    let http = client(&emu);
    let get = || http.get(imds_url(&emu)).header("Metadata", "true").send();

    emu.set_faults(
        Endpoint::Imds,
        vec![Fault::Challenge("https://management.azure.com".into())],
    );
    let r = get().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("resource=\"https://management.azure.com\""),
        "{challenge}"
    );

    emu.set_faults(Endpoint::Imds, vec![Fault::Reset]);
    let e = get().await.unwrap_err();
    assert!(!e.is_timeout(), "{e:?}");

    emu.set_faults(Endpoint::Imds, vec![Fault::Stall]);
    let stalled = tokio::time::timeout(Duration::from_millis(800), get()).await;
    assert!(stalled.is_err(), "a stalled request gets no answer");

    // A standing fault holds for every request until cleared; a sequence goes first.
    emu.set_faults(
        Endpoint::Imds,
        vec![Fault::Status {
            status: 429,
            retry_after: None,
            body: None,
        }],
    );
    emu.set_standing_fault(
        Endpoint::Imds,
        Some(Fault::Status {
            status: 503,
            retry_after: None,
            body: None,
        }),
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [429, 503, 503, 503]);
    emu.set_standing_fault(Endpoint::Imds, None);
    assert_eq!(get().await.unwrap().status(), 200);
}
