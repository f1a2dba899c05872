//! Use-only secrets (issue 22): a grant `use:ALIAS=NAME for HOST[:PORT] [as PROCESSOR]` lets a
//! guest have the host apply a secret to its outgoing requests to those hosts, by writing
//! `{{secret:ALIAS}}` in a header, and never read it. Each test runs the real binary with a
//! real guest against the emulator's vault and an upstream on loopback that records exactly
//! what it received and echoes it back in several encodings, split into small chunks.

use crate::emulator::{self, Emulator};
use crate::harness::{Run, cli, guest};
use crate::run_egress::blocking;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the echo upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type Seen = Arc<Mutex<Vec<Received>>>;

/// An upstream on loopback that records every request and answers with all of it echoed:
/// each request header back as `x-echo-NAME`, and a body holding the headers as text, as JSON,
/// in base64 and base64url, and the request's body, sent in 5-byte chunks (so a value is
/// split across chunk boundaries).
pub async fn echo_upstream() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes().to_vec();
                            let headers: Vec<(String, String)> = parts
                                .headers
                                .iter()
                                .map(|(n, v)| {
                                    (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into())
                                })
                                .collect();
                            record.lock().unwrap().push(Received {
                                method: parts.method.to_string(),
                                headers: headers.clone(),
                                body: body.clone(),
                            });
                            let text: String =
                                headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
                            let mut echo = format!(
                                "text:\n{text}json: {}\nbase64: {}\nbase64url: {}\nbody: ",
                                serde_json::json!(headers),
                                STANDARD.encode(&text),
                                URL_SAFE_NO_PAD.encode(&text),
                            )
                            .into_bytes();
                            echo.extend_from_slice(&body);
                            let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = echo
                                .chunks(5)
                                .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                                .collect();
                            let mut response = hyper::Response::new(StreamBody::new(
                                futures::stream::iter(chunks),
                            ));
                            for (n, v) in &headers {
                                if let (Ok(name), Ok(value)) = (
                                    http::HeaderName::from_bytes(format!("x-echo-{n}").as_bytes()),
                                    http::HeaderValue::from_str(v),
                                ) {
                                    response.headers_mut().append(name, value);
                                }
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// Every form of `value` a guest must not see.
pub fn forms(value: &str) -> Vec<String> {
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        value.to_owned(),
        STANDARD.encode(value),
        URL_SAFE_NO_PAD.encode(value),
        hex,
    ]
}

/// Asserts that no form of `value` is anywhere in `text` (`what` says where).
#[track_caller]
pub fn assert_absent(text: &str, value: &str, what: &str) {
    for form in forms(value) {
        assert!(
            !text.contains(&form),
            "{what} holds {form:?}:\n{}",
            excerpt(text, &form)
        );
    }
}

fn excerpt(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text.floor_char_boundary(at.saturating_sub(200));
    let end = text.ceil_char_boundary((at + 200).min(text.len()));
    text[start..end].to_owned()
}

const LOG_FILTER: &str =
    "trace,cranelift_codegen=info,wasmtime_environ=info,wasmtime_cranelift=info,wasmtime=info";

/// `wasm-secrets run` of `component` with the emulator's vault, an audit log at `audit`, logs at
/// trace, `args` before the component and `guest_args` after it.
pub async fn run_guest(
    emu: &Emulator,
    component: PathBuf,
    audit: &Path,
    args: &[String],
    guest_args: &[String],
) -> Run {
    let mut cmd: Command = cli();
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
        // Everything of ours and of the HTTP and TLS stacks at trace; the compiler's trace lines
        // (every type of a 14 MB JavaScript component) hold no values and take minutes.
        .env("WASM_SECRETS_LOG", LOG_FILTER)
        .args(["run", "--credential", "managed-identity", "--vault"])
        .arg(emu.default_vault_url())
        .arg("--ca-cert")
        .arg(emu.ca_cert_path())
        .arg("--audit-log")
        .arg(audit)
        .args(args)
        .arg(component)
        .args(guest_args);
    blocking(cmd).await
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// A fresh value no test has used, so finding it anywhere means it leaked from here.
fn fresh(what: &str) -> String {
    format!(
        "{what}-{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// The emulator's vault holding `secret` (a fresh value), an echo upstream the use-only grant
/// `use:ALIAS=SECRET for API` names and another egress allows too, an audit log, and the host
/// flags that say so.
struct GrantedBesideAnother {
    emu: Emulator,
    value: String,
    api: SocketAddr,
    api_seen: Seen,
    other: SocketAddr,
    other_seen: Seen,
    _dir: tempfile::TempDir,
    audit: PathBuf,
    host_args: Vec<String>,
}

async fn granted_beside_another(alias: &str, secret: &str) -> GrantedBesideAnother {
    let emu = emulator::start().await;
    let value = fresh(secret);
    emu.put_secret("main", secret, &value);
    let (api, api_seen) = echo_upstream().await;
    let (other, other_seen) = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let host_args = s(&[
        "--grant",
        &format!("use:{alias}={secret} for {api}"),
        "--allow-http",
        &api.to_string(),
        "--allow-http",
        &other.to_string(),
    ]);
    GrantedBesideAnother {
        emu,
        value,
        api,
        api_seen,
        other,
        other_seen,
        _dir: dir,
        audit,
        host_args,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_use_only_secret_reaches_only_its_host_in_the_guests_template_and_never_the_guest() {
    let GrantedBesideAnother {
        emu,
        value,
        api,
        api_seen,
        other,
        other_seen,
        _dir,
        audit,
        host_args,
    } = granted_beside_another("stripe", "stripe-live").await;

    // To its host: the marker in Authorization and in a custom header, both filled.
    let r = run_guest(
        &emu,
        guest("http-send"),
        &audit,
        &host_args,
        &s(&[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer {{secret:stripe}}",
            "-H",
            "X-Api-Key: {{secret:stripe}}",
            "-H",
            "X-Plain: kept",
            "-d",
            "hello",
            "--dump-memory",
            &format!("http://{api}/charge"),
        ]),
    )
    .await;
    assert_eq!(
        r.code,
        0,
        "{}\n{}",
        r.stdout.lines().next().unwrap_or(""),
        r.stderr
    );
    let got = api_seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {value}").as_str())
    );
    assert_eq!(got[0].header("x-api-key"), Some(value.as_str()));
    assert_eq!(got[0].header("x-plain"), Some("kept"));
    assert_eq!(got[0].body, b"hello");
    // The upstream echoed it in every shape, split in 5-byte chunks; the guest got masks.
    assert!(r.stdout.contains("status: 200"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&"*".repeat(value.len())),
        "the echo was masked"
    );
    assert!(
        r.stdout.contains("x-plain: kept"),
        "other headers pass as they are"
    );
    let marker_hex: String = "{{secret:stripe}}"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        r.stdout.contains(&marker_hex),
        "the guest dumped its memory, which holds the marker it sent"
    );
    assert_absent(&r.stdout, &value, "the guest's output and whole memory");
    assert_absent(&r.stderr, &value, "the host's logs at trace");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_absent(&log, &value, "the audit log");
    let line: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["op"] == "use")
        .unwrap_or_else(|| panic!("no use line in {log}"));
    assert_eq!(line["name"], "stripe");
    assert_eq!(line["secret"], "stripe-live");
    assert_eq!(line["processor"], "value");
    assert_eq!(line["host"], "127.0.0.1");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["status"], 200);
    assert_eq!(line["outcome"], "ok");

    // To a host egress allows but the grant does not name: refused in the guest, nothing sent.
    let r = run_guest(
        &emu,
        guest("http-send"),
        &audit,
        &host_args,
        &s(&[
            "-H",
            "X-Api-Key: {{secret:stripe}}",
            &format!("http://{other}/steal"),
        ]),
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains("may be sent to") && r.stdout.contains("nothing was sent"),
        "a clear error in the guest: {}",
        r.stdout
    );
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "nothing reached the other host"
    );
    assert_absent(&r.stdout, &value, "the refusal");
    assert_absent(&r.stderr, &value, "the host's logs");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("\"op\":\"use\"") && l.contains("\"outcome\":\"not-granted\"")),
        "the refusal is audited: {log}"
    );

    // And the guest cannot read it.
    let r = run_guest(
        &emu,
        guest("secrets-get"),
        &audit,
        &s(&["--grant", &format!("use:stripe=stripe-live for {api}")]),
        &s(&["stripe"]),
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("stripe: not-granted") && r.stdout.contains("use-only"),
        "{}",
        r.stdout
    );
    assert_absent(&r.stdout, &value, "get's answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_and_hmac_processors_send_what_the_upstream_can_verify() {
    use hmac::Mac;
    let emu = emulator::start().await;
    let (user, password, key) = (fresh("user"), fresh("pass"), fresh("whsec"));
    emu.put_secret("main", "api-user", &user);
    emu.put_secret("main", "api-password", &password);
    emu.put_secret("main", "webhook-key", &key);
    let (api, seen) = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let args = s(&[
        "--grant",
        &format!("use:api=api-user+api-password for {api} as basic"),
        "--grant",
        &format!("use:hook=webhook-key for {api} as hmac-sha256"),
        "--allow-http",
        &api.to_string(),
    ]);
    let body = r#"{"event":"paid","amount":4200}"#;
    let r = run_guest(
        &emu,
        guest("http-send"),
        &audit,
        &args,
        &s(&[
            "-X",
            "POST",
            "-H",
            "Authorization: Basic {{secret:api}}",
            "-H",
            "X-Signature: sha256={{secret:hook}}",
            "-d",
            body,
            &format!("http://{api}/webhook"),
        ]),
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let got = seen.lock().unwrap()[0].clone();
    let basic = got
        .header("authorization")
        .unwrap()
        .strip_prefix("Basic ")
        .unwrap();
    assert_eq!(
        String::from_utf8(STANDARD.decode(basic).unwrap()).unwrap(),
        format!("{user}:{password}")
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(&got.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        got.header("x-signature"),
        Some(format!("sha256={expected}").as_str())
    );
    assert_eq!(
        got.body,
        body.as_bytes(),
        "the exact bytes sent were signed"
    );
    for v in [&user, &password, &key, &basic.to_owned()] {
        assert_absent(&r.stdout, v, "the guest's output");
        assert_absent(&r.stderr, v, "the host's logs");
    }
    let log = std::fs::read_to_string(&audit).unwrap();
    for processor in ["basic", "hmac-sha256"] {
        assert!(
            log.contains(&format!("\"processor\":\"{processor}\"")),
            "{processor}: {log}"
        );
    }
}

/// The same from JavaScript's own `fetch` (componentize-js) and Python's wasi:http client
/// (componentize-py): the marker is an ordinary header value, so any language's HTTP client
/// can use a secret it never sees, written by hand (`X-Api-Key`) or made by our SDK
/// (`--bearer`: `useSecret` in JavaScript, `use_secret` in Python).
#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_clients_use_a_secret_they_never_see() {
    let _compiling = crate::harness::CPU.read().await;
    use crate::languages::Lang;
    let emu = emulator::start().await;
    let value = fresh("crm-token");
    emu.put_secret("main", "crm-token", &value);
    for lang in [Lang::JavaScript, Lang::Python] {
        let (api, seen) = echo_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let r = run_guest(
            &emu,
            lang.guest("http-send"),
            &audit,
            &s(&[
                "--grant",
                &format!("use:crm=crm-token for {api}"),
                "--allow-http",
                &api.to_string(),
            ]),
            &s(&[
                "-X",
                "POST",
                "--bearer",
                "crm",
                "-H",
                "x-api-key: {{secret:crm}}",
                "-d",
                "{}",
                &format!("http://{api}/contacts"),
            ]),
        )
        .await;
        assert_eq!(r.code, 0, "{lang:?}: {}\n{}", r.stdout, r.stderr);
        let got = seen.lock().unwrap()[0].clone();
        assert_eq!(
            got.header("authorization"),
            Some(format!("Bearer {value}").as_str()),
            "{lang:?}"
        );
        assert_eq!(got.header("x-api-key"), Some(value.as_str()), "{lang:?}");
        assert_eq!(got.body, b"{}", "{lang:?}");
        assert!(r.stdout.contains("status: 200"), "{lang:?}: {}", r.stdout);
        assert!(
            r.stdout.contains(&"*".repeat(value.len())),
            "{lang:?}: the echo was masked: {}",
            r.stdout
        );
        assert_absent(&r.stdout, &value, "the guest's output");
        assert_absent(&r.stderr, &value, "the host's logs");
    }
}

/// A token endpoint on loopback for the client credentials grant: checks the client id and
/// secret it is sent, mints a fresh token per exchange (valid `lifetime` seconds), and counts.
async fn token_endpoint(
    client_id: String,
    client_secret: String,
    lifetime: u64,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let minted: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let record = minted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (record, id, secret) = (record.clone(), client_id.clone(), client_secret.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (record, id, secret) = (record.clone(), id.clone(), secret.clone());
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let form: std::collections::HashMap<String, String> =
                                url::form_urlencoded::parse(&body).into_owned().collect();
                            let ok = form.get("grant_type").map(String::as_str)
                                == Some("client_credentials")
                                && form.get("client_id") == Some(&id)
                                && form.get("client_secret") == Some(&secret)
                                && form.get("scope").map(String::as_str)
                                    == Some("contacts.read contacts.write");
                            let (status, json) = if ok {
                                let token = fresh("at");
                                record.lock().unwrap().push(token.clone());
                                (
                                    200,
                                    serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}),
                                )
                            } else {
                                (401, serde_json::json!({"error": "invalid_client"}))
                            };
                            let mut response = hyper::Response::new(http_body_util::Full::new(
                                Bytes::from(json.to_string()),
                            ));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, minted)
}

/// `as oauth2`: the host exchanges the client id and secret for an access token once per token
/// lifetime (1,000 requests, one exchange), injects it, and the guest sees neither. The guest
/// makes its `Authorization` with the Rust SDK (`wasm_secrets_guest::use_secret`).
#[tokio::test(flavor = "multi_thread")]
async fn oauth2_client_credentials_cost_one_exchange_for_a_thousand_requests() {
    let emu = emulator::start().await;
    let (client_id, client_secret) = (fresh("client"), fresh("csecret"));
    emu.put_secret("main", "crm-client-id", &client_id);
    emu.put_secret("main", "crm-client-secret", &client_secret);
    let (login, minted) = token_endpoint(client_id.clone(), client_secret.clone(), 3600).await;
    let (api, seen) = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let grant = format!(
        "use:crm=crm-client-id+crm-client-secret for {api} as oauth2 http://{login}/oauth/token contacts.read,contacts.write"
    );
    let r = run_guest(
        &emu,
        guest("http-send"),
        &audit,
        &s(&["--grant", &grant, "--allow-http", &api.to_string()]),
        &s(&[
            "--bearer",
            "crm",
            "--repeat",
            "1000",
            &format!("http://{api}/contacts"),
        ]),
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, excerpt(&r.stderr, "WARN"));
    let minted = minted.lock().unwrap().clone();
    assert_eq!(minted.len(), 1, "one exchange for 1,000 requests");
    let token = &minted[0];
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1000);
    assert!(
        seen.iter()
            .all(|got| got.header("authorization") == Some(format!("Bearer {token}").as_str())),
        "every request carried the token"
    );
    assert!(
        r.stdout.contains(&"*".repeat(token.len())),
        "the echo was masked: {}",
        r.stdout
    );
    for v in [token, &client_id, &client_secret] {
        assert_absent(&r.stdout, v, "the guest's output");
        assert_absent(&r.stderr, v, "the host's logs at trace");
    }
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_absent(&log, token, "the audit log");
    let uses = log
        .lines()
        .filter(|l| l.contains("\"op\":\"use\"") && l.contains("\"processor\":\"oauth2\""))
        .count();
    assert_eq!(uses, 1000, "one audit line per request");
}

/// Through the library (`Runtime::run_command`, as an embedder runs a guest): a use-only secret
/// comes through the same cache as `get`, so a rotated value is injected once the old one's TTL
/// has passed, and not before; each use is counted by component, processor and outcome.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_use_only_secret_is_injected_fresh_after_its_ttl() {
    use std::time::Duration;
    use wasm_secrets::cache::CacheConfig;
    use wasm_secrets::egress::{EgressPolicy, EgressRule};
    use wasm_secrets::runtime::CommandOptions;
    let emu = emulator::start().await;
    let (first, second) = (fresh("v1"), fresh("v2"));
    emu.put_secret("main", "rotating-key", &first);
    let (api, seen) = echo_upstream().await;
    let cache = CacheConfig {
        // Long enough that the second send (a whole command: instantiate, connect, inject)
        // lands within it on a loaded machine.
        ttl: Duration::from_secs(3),
        refresh_wait: Duration::from_secs(5),
        ..CacheConfig::default()
    };
    let vaults = emulator::connect(
        &emu,
        &emulator::Identity::imds(&emu),
        cache,
        emulator::fast_options(),
    );
    let grant = format!("use:key=rotating-key for {api}");
    let secrets = wasm_secrets::SecretsCtx::new(
        "rotating",
        wasm_secrets::Grants::parse([grant]).unwrap(),
        vaults,
    );
    let egress =
        Arc::new(EgressPolicy::new(vec![EgressRule::http(api.to_string())], None, true).unwrap());
    let options = CommandOptions {
        args: s(&[
            "http-send",
            "-H",
            "X-Api-Key: {{secret:key}}",
            &format!("http://{api}/"),
        ]),
        capture_output: true,
        egress,
        ..CommandOptions::default()
    };
    let component = crate::harness::component("http-send");
    let counted = || {
        crate::harness::metric(
            r#"wasm_secrets_secrets_applied_total{component="rotating",processor="value",outcome="ok"}"#,
        )
    };
    let before = counted();
    let send = || async {
        let r = crate::harness::runtime()
            .run_command(&component, secrets.clone(), &options)
            .await
            .unwrap();
        let out = String::from_utf8(r.stdout).unwrap();
        assert!(out.starts_with("status: 200"), "{out}");
        assert_absent(&out, &first, "the guest's output");
        assert_absent(&out, &second, "the guest's output");
        seen.lock()
            .unwrap()
            .last()
            .unwrap()
            .header("x-api-key")
            .unwrap()
            .to_owned()
    };
    assert_eq!(send().await, first);
    emu.put_secret("main", "rotating-key", &second);
    assert_eq!(
        send().await,
        first,
        "within its TTL the cached value is used"
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(
        send().await,
        second,
        "past its TTL the rotated value is injected"
    );
    assert_eq!(counted() - before, 3.0, "each use is counted");
}

/// A component written for wasmCloud's secrets interface (`wasmcloud:secrets@0.1.0-draft`:
/// `store.get`, then `reveal`) reads its granted secrets unchanged; a use-only secret is refused
/// at `get` (its `reveal` has no error to refuse with) and never crosses into the guest; a key
/// without a grant is `not-found`.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasmcloud_component_reveals_granted_secrets_and_never_a_use_only_one() {
    let emu = emulator::start().await;
    let hidden = fresh("hidden");
    emu.put_secret("main", "hidden-token", &hidden);
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let r = run_guest(
        &emu,
        guest("secrets-get-wasmcloud"),
        &audit,
        &s(&[
            "--grant",
            "db-password",
            "--grant",
            "use:hidden=hidden-token for api.example.com",
        ]),
        &s(&["db_password", "hidden", "api-key"]),
    )
    .await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], format!("db_password={}", emulator::DB_PASSWORD));
    assert!(
        lines[1].starts_with("hidden: upstream: ") && lines[1].contains("use-only"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "api-key: not-found");
    assert_absent(&r.stdout, &hidden, "the guest's output");
    assert_absent(&r.stderr, &hidden, "the host's logs");
}

/// A WASI 0.3 command's `wasi:http/client@0.3.0` requests go through the same egress hook: the
/// marker is filled for the granted host, the echo comes back masked, and a marker to a host
/// egress allows but the grant does not name refuses the request before anything is sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_0_3_guest_uses_a_secret_it_never_sees() {
    let GrantedBesideAnother {
        emu,
        value,
        api,
        api_seen,
        other,
        other_seen,
        _dir,
        audit,
        host_args,
    } = granted_beside_another("partner", "partner-key").await;
    let (to_api, to_other) = (format!("http://{api}/a"), format!("http://{other}/b"));
    let r = run_guest(
        &emu,
        guest("http-get-p3"),
        &audit,
        &host_args,
        &s(&[
            "-H",
            "X-Api-Key: {{secret:partner}}",
            "--full",
            &to_api,
            &to_other,
        ]),
    )
    .await;
    let got = api_seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{}\n{}", r.stdout, excerpt(&r.stderr, "WARN"));
    assert_eq!(got[0].header("x-api-key"), Some(value.as_str()));
    let answered = crate::run_egress::line_for(&r.stdout, &to_api);
    assert!(answered.starts_with("200: "), "{answered}");
    assert!(
        r.stdout
            .contains(&format!("x-api-key: {}", "*".repeat(value.len()))),
        "the echo was masked: {}",
        r.stdout
    );
    let refused = crate::run_egress::line_for(&r.stdout, &to_other);
    assert!(
        refused.starts_with("error: ") && refused.contains("nothing was sent"),
        "{refused}"
    );
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "nothing reached the other host"
    );
    assert_eq!(r.code, 1, "the refusal fails the command");
    assert_absent(&r.stdout, &value, "the guest's output");
    assert_absent(&r.stderr, &value, "the host's logs at trace");
    assert_absent(
        &std::fs::read_to_string(&audit).unwrap(),
        &value,
        "the audit log",
    );
}

/// `as oauth2` against an Entra-shaped token endpoint over TLS (the emulator's
/// `/{tenant}/oauth2/v2.0/token`, trusted through `--ca-cert` only): the host exchanges a
/// service principal's id and secret from the vault for a token the emulator minted and
/// injects it. `check` probes the same exchange: ok with the right secret, and a clear failure
/// (no value in it) with a wrong one.
#[tokio::test(flavor = "multi_thread")]
async fn oauth2_reaches_a_tls_token_url_through_the_hosts_trust_and_check_probes_it() {
    let emu = emulator::start().await;
    let sp = emu.config().identities.service_principals[0].clone();
    emu.put_secret("main", "sp-id", &sp.client_id);
    emu.put_secret("main", "sp-secret", &sp.client_secret);
    let wrong = fresh("wrong");
    emu.put_secret("main", "sp-wrong-secret", &wrong);
    let (api, seen) = echo_upstream().await;
    let token_url = format!(
        "{}/{}/oauth2/v2.0/token",
        emu.authority_host(),
        emu.tenant_id()
    );
    let grant = |secret: &str| {
        format!(
            "use:graph=sp-id+{secret} for {api} as oauth2 {token_url} https://partner.example/.default"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let r = run_guest(
        &emu,
        guest("http-send"),
        &audit,
        &s(&[
            "--grant",
            &grant("sp-secret"),
            "--allow-http",
            &api.to_string(),
        ]),
        &s(&[
            "-H",
            "Authorization: Bearer {{secret:graph}}",
            &format!("http://{api}/me"),
        ]),
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, excerpt(&r.stderr, "WARN"));
    let sent = seen.lock().unwrap()[0]
        .header("authorization")
        .unwrap()
        .to_owned();
    let token = sent.strip_prefix("Bearer ").unwrap();
    assert!(
        emu.minted_tokens().iter().any(|t| t == token),
        "the emulator minted the injected token"
    );
    for v in [token, &sp.client_secret] {
        assert_absent(&r.stdout, v, "the guest's output");
        assert_absent(&r.stderr, v, "the host's logs at trace");
    }

    let check = |grant: String| {
        let mut cmd: Command = cli();
        cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.imds_base())
            .args(["check", "--credential", "managed-identity", "--vault"])
            .arg(emu.default_vault_url())
            .arg("--ca-cert")
            .arg(emu.ca_cert_path())
            .args(["--grant", &grant]);
        blocking(cmd)
    };
    let ok = check(grant("sp-secret")).await;
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    let line = ok.stdout.lines().find(|l| l.starts_with("grant ")).unwrap();
    assert!(
        line.contains("default/sp-id is readable")
            && line.contains("default/sp-secret is readable")
            && line.contains(&format!("{token_url} issued a token")),
        "{line}"
    );
    let bad = check(grant("sp-wrong-secret")).await;
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    let line = bad
        .stdout
        .lines()
        .find(|l| l.starts_with("grant "))
        .unwrap();
    assert!(
        line.contains("FAILED") && line.contains("rejected") && line.contains("HTTP 401"),
        "{line}"
    );
    for out in [&ok.stdout, &ok.stderr, &bad.stdout, &bad.stderr] {
        assert_absent(out, &sp.client_secret, "check's report");
        assert_absent(out, &wrong, "check's report");
    }
}

/// Plain http carries a use-only secret to loopback addresses only. `mixed.test` resolves
/// (pinned) to 127.0.0.1, where the upstream listens, and to 10.255.255.1: a request carrying
/// a marker there is refused before anything is sent. (Were the check missing, the request
/// would go to the first address, the loopback upstream, which would record it: nothing leaves
/// loopback either way.) To `loopback.test`, loopback alone, the same request is filled and
/// sent. Through the library, with the loopback guard off, as an embedder would run it.
#[tokio::test(flavor = "multi_thread")]
async fn plain_http_carries_a_use_only_secret_to_loopback_addresses_only() {
    use std::net::{IpAddr, Ipv4Addr};
    use wasm_secrets::egress::{EgressPolicy, EgressRule, Resolver};
    use wasm_secrets::runtime::CommandOptions;
    let emu = emulator::start().await;
    let value = fresh("plain");
    emu.put_secret("main", "partner-key", &value);
    let (api, seen) = echo_upstream().await;
    let port = api.port();
    let vaults = emulator::connect(
        &emu,
        &emulator::Identity::imds(&emu),
        emulator::long_cache(),
        emulator::fast_options(),
    );
    let grant = format!("use:key=partner-key for mixed.test:{port},loopback.test:{port}");
    let secrets = wasm_secrets::SecretsCtx::new(
        "plain",
        wasm_secrets::Grants::parse([grant]).unwrap(),
        vaults,
    );
    let resolver = Resolver::system();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    resolver.pin(
        "mixed.test",
        [loopback, IpAddr::V4(Ipv4Addr::new(10, 255, 255, 1))],
    );
    resolver.pin("loopback.test", [loopback]);
    let rules = ["mixed.test", "loopback.test"]
        .map(|h| EgressRule::http(format!("{h}:{port}")).allow_private())
        .to_vec();
    let egress = Arc::new(
        EgressPolicy::new(rules, None, false)
            .unwrap()
            .with_resolver(resolver),
    );
    let send = |host: &str| {
        let options = CommandOptions {
            args: s(&[
                "http-send",
                "-H",
                "X-Api-Key: {{secret:key}}",
                &format!("http://{host}:{port}/"),
            ]),
            capture_output: true,
            egress: egress.clone(),
            ..CommandOptions::default()
        };
        let secrets = secrets.clone();
        async move {
            let r = crate::harness::runtime()
                .run_command(&crate::harness::component("http-send"), secrets, &options)
                .await
                .unwrap();
            String::from_utf8(r.stdout).unwrap()
        }
    };
    let refused = send("mixed.test").await;
    assert!(
        refused.starts_with("error: ") && refused.contains("HttpRequestDenied"),
        "{refused}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing was sent, not even to the loopback address"
    );
    let sent = send("loopback.test").await;
    assert!(sent.starts_with("status: 200"), "{sent}");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-api-key"), Some(value.as_str()));
    assert_absent(&refused, &value, "the refusal");
    assert_absent(&sent, &value, "the guest's output");
}
