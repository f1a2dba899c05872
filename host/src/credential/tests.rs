//! Each source against a loopback server that speaks its wire shape.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::app_service::{AppServiceCredential, Protocol};
use super::arc::{ArcCredential, read_key_file};
use super::azure_cli::AzureCliCredential;
use super::client_secret::ClientSecretCredential;
use super::imds::ImdsCredential;
use super::workload_identity::WorkloadIdentityCredential;
use super::*;
use crate::credential::CredentialKind;
use crate::http::HttpClient;
use crate::http::test_server::{Resp, TestServer};

const VAULT: &str = "https://vault.azure.net";
const CANARY: &str = "canary-eyJ0eXAiOiJKV1Qi";

fn http() -> HttpClient {
    HttpClient::builder().loopback_only(true).build().unwrap()
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        gone_window: Duration::from_millis(300),
        attempt_timeout: Duration::from_millis(500),
    }
}

fn imds_ok() -> Resp {
    Resp::json(
        200,
        json!({"access_token": "tok", "expires_in": "3599", "expires_on": "1906484173",
               "not_before": "1506480273", "resource": VAULT, "token_type": "Bearer"}),
    )
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn imds(server: &TestServer, id: Option<UserAssignedId>) -> ImdsCredential {
    let mut c = ImdsCredential::new(http(), &server.url(""), id).unwrap();
    c.retry = fast();
    c
}

#[tokio::test]
async fn imds_system_and_user_assigned() {
    let server = TestServer::start(|_, _| imds_ok()).await;
    let t = imds(&server, None).get_token(VAULT).await.unwrap();
    assert_eq!(t.secret(), "tok");
    assert_eq!(epoch(t.expires_on()), 1906484173);
    for (id, param) in [
        (UserAssignedId::ClientId("c1".into()), "client_id"),
        (UserAssignedId::ObjectId("o1".into()), "object_id"),
        (
            UserAssignedId::ResourceId("/subscriptions/x".into()),
            "msi_res_id",
        ),
    ] {
        let c = imds(&server, Some(id.clone()));
        assert!(c.cache_key().contains(&id.label()));
        c.get_token(VAULT).await.unwrap();
        let req = server.requests().pop().unwrap();
        assert!(req.query(param).is_some(), "{param}");
    }
    let req = &server.requests()[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.path(), "/metadata/identity/oauth2/token");
    assert_eq!(req.query("api-version").as_deref(), Some("2018-02-01"));
    assert_eq!(req.query("resource").as_deref(), Some(VAULT));
    assert_eq!(req.header("metadata"), Some("true"));
    assert!(req.header("x-forwarded-for").is_none());
    assert!(req.query("client_id").is_none());
}

#[tokio::test]
async fn imds_retries_transient_statuses() {
    for status in [404, 410, 429, 500, 503] {
        let server = TestServer::start(
            move |_, i| {
                if i < 2 { Resp::new(status) } else { imds_ok() }
            },
        )
        .await;
        let t = imds(&server, None).get_token(VAULT).await.unwrap();
        assert_eq!(t.secret(), "tok");
        assert_eq!(server.hits(), 3, "status {status}");
    }
}

#[tokio::test]
async fn imds_gives_up_after_max_retries() {
    let server = TestServer::start(|_, _| Resp::new(500)).await;
    let err = imds(&server, None).get_token(VAULT).await.unwrap_err();
    assert!(matches!(err, CredentialError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn imds_retries_410_for_the_whole_window() {
    let server = TestServer::start(|_, _| Resp::new(410)).await;
    let started = std::time::Instant::now();
    let err = imds(&server, None).get_token(VAULT).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        server.hits() > 4,
        "410 outlasts max_retries: {}",
        server.hits()
    );
    assert!(matches!(err, CredentialError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn imds_does_not_retry_other_4xx() {
    for (status, needle) in [(400, "not assigned"), (403, "403")] {
        let server = TestServer::start(move |_, _| {
            Resp::json(
                status,
                json!({"error": "invalid_request", "error_description": CANARY}),
            )
        })
        .await;
        let err = imds(&server, None).get_token(VAULT).await.unwrap_err();
        assert!(matches!(err, CredentialError::Rejected(_)), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.to_string().contains("invalid_request"), "{err}");
        assert!(!err.to_string().contains("canary"), "{err}");
        assert_eq!(server.hits(), 1);
    }
}

#[tokio::test]
async fn imds_times_out_then_fails() {
    let server = TestServer::start(|_, _| imds_ok().delay(Duration::from_secs(5))).await;
    let mut c = imds(&server, None);
    c.retry.max_retries = 1;
    c.retry.attempt_timeout = Duration::from_millis(100);
    let started = std::time::Instant::now();
    let err = c.get_token(VAULT).await.unwrap_err();
    assert!(matches!(err, CredentialError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn malformed_and_huge_answers_are_unavailable() {
    let server = TestServer::start(|_, i| match i {
        0 => Resp::new(200).body(format!("{{\"access_token\": \"{CANARY}\", ")),
        1 => Resp::json(200, json!({"access_token": CANARY, "expires_on": CANARY})),
        _ => Resp::new(200).body(vec![b' '; 10 << 20]),
    })
    .await;
    let c = imds(&server, None);
    for _ in 0..3 {
        let err = c.get_token(VAULT).await.unwrap_err();
        assert!(matches!(err, CredentialError::Unavailable(_)), "{err}");
        assert!(!err.to_string().contains("canary"), "{err}");
    }
    assert!(
        c.get_token(VAULT)
            .await
            .unwrap_err()
            .to_string()
            .contains("larger than")
    );
}

#[tokio::test]
async fn token_in_error_body_never_reaches_the_error() {
    for status in [400, 401, 403, 404, 429, 500] {
        let server = TestServer::start(move |_, _| {
            Resp::json(
                status,
                json!({"access_token": CANARY, "error": CANARY,
                                      "error_description": format!("AADSTS7000215: {CANARY}")}),
            )
        })
        .await;
        let err = imds(&server, None).get_token(VAULT).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("canary"), "{text}");
        let cs = ClientSecretCredential::new(
            http(),
            &server.url(""),
            "t1",
            "c1",
            zeroize::Zeroizing::new("s3cr3t-value".into()),
        )
        .unwrap();
        let err = cs.get_token(VAULT).await.unwrap_err();
        let text = format!("{err} {err:?} {cs:?}");
        assert!(
            !text.contains("canary") && !text.contains("s3cr3t"),
            "{text}"
        );
        assert!(text.contains("AADSTS7000215"), "{text}");
    }
}

#[tokio::test]
async fn app_service_2019_and_user_assigned() {
    let server = TestServer::start(|_, _| {
        Resp::json(
            200,
            json!({"access_token": "tok", "expires_on": "1906484173",
                               "resource": VAULT, "token_type": "Bearer", "client_id": "x"}),
        )
    })
    .await;
    let endpoint = server.url("/msi/token");
    for (id, param) in [
        (None, None),
        (
            Some(UserAssignedId::ClientId("c".into())),
            Some("client_id"),
        ),
        (
            Some(UserAssignedId::ObjectId("o".into())),
            Some("principal_id"),
        ),
        (
            Some(UserAssignedId::ResourceId("r".into())),
            Some("mi_res_id"),
        ),
    ] {
        let c = AppServiceCredential::new(http(), Protocol::V2019, &endpoint, "hdr".into(), id)
            .unwrap();
        assert_eq!(c.kind(), "app-service");
        assert!(!format!("{c:?}").contains("hdr"));
        let t = c.get_token(VAULT).await.unwrap();
        assert_eq!(epoch(t.expires_on()), 1906484173);
        let req = server.requests().pop().unwrap();
        assert_eq!(req.path(), "/msi/token");
        assert_eq!(req.query("api-version").as_deref(), Some("2019-08-01"));
        assert_eq!(req.header("x-identity-header"), Some("hdr"));
        if let Some(p) = param {
            assert!(req.query(p).is_some(), "{p}");
        }
    }
}

#[tokio::test]
async fn app_service_2017_with_date_expiry() {
    let server = TestServer::start(|_, i| {
        let on = if i == 0 {
            "09/14/2037 00:00:00 +00:00"
        } else {
            "1/16/2037 5:24:12 AM +00:00"
        };
        Resp::json(
            200,
            json!({"access_token": "tok", "expires_on": on, "token_type": "Bearer"}),
        )
    })
    .await;
    let id = Some(UserAssignedId::ClientId("c".into()));
    let c = AppServiceCredential::new(
        http(),
        Protocol::V2017,
        &server.url("/MSI/token/"),
        "sec".into(),
        id,
    )
    .unwrap();
    assert_eq!(c.kind(), "app-service-2017");
    assert_eq!(
        epoch(c.get_token(VAULT).await.unwrap().expires_on()),
        2136499200
    );
    assert_eq!(
        epoch(c.get_token(VAULT).await.unwrap().expires_on()),
        2115696252
    );
    let req = &server.requests()[0];
    assert_eq!(req.query("api-version").as_deref(), Some("2017-09-01"));
    assert_eq!(req.query("clientid").as_deref(), Some("c"));
    assert_eq!(req.header("secret"), Some("sec"));
    let by_object = Some(UserAssignedId::ObjectId("o".into()));
    let err = AppServiceCredential::new(
        http(),
        Protocol::V2017,
        &server.url("/"),
        "s".into(),
        by_object,
    )
    .unwrap_err();
    assert!(matches!(err, CredentialError::NotConfigured(_)));
}

fn arc_server(realm: String) -> impl Fn(&crate::http::test_server::Req, usize) -> Resp {
    move |req, _| match req.header("authorization") {
        None => Resp::new(401).header("WWW-Authenticate", &format!("Basic realm={realm}")),
        Some("Basic the-key") => imds_ok(),
        Some(_) => Resp::new(401),
    }
}

#[tokio::test]
async fn arc_challenge_then_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("abc.key");
    std::fs::write(&key, "the-key\n").unwrap();
    let server = TestServer::start(arc_server(key.display().to_string())).await;
    let mut c = ArcCredential::new(
        http(),
        &server.url("/metadata/identity/oauth2/token"),
        dir.path().into(),
    )
    .unwrap();
    c.retry = fast();
    assert_eq!(c.get_token(VAULT).await.unwrap().secret(), "tok");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("metadata"), Some("true"));
    assert_eq!(reqs[0].query("api-version").as_deref(), Some("2019-11-01"));
    assert_eq!(reqs[1].header("authorization"), Some("Basic the-key"));
}

#[tokio::test]
async fn arc_refuses_bad_key_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tokens");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(root.path().join("outside.key"), "k").unwrap();
    std::fs::write(dir.join("wrong.txt"), "k").unwrap();
    std::fs::write(dir.join("big.key"), vec![b'k'; 4097]).unwrap();
    std::fs::write(dir.join("sub/nested.key"), "k").unwrap();
    std::fs::write(dir.join("ok.key"), "k").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.path().join("outside.key"), dir.join("link.key")).unwrap();
    let cases = [
        (root.path().join("outside.key"), "not directly inside"),
        (dir.join("wrong.txt"), ".key"),
        (dir.join("big.key"), "larger than 4096"),
        (dir.join("missing.key"), "cannot be resolved"),
        (dir.join("../outside.key"), "not directly inside"),
        (dir.join("sub/nested.key"), "not directly inside"),
        (dir.join("sub/../../outside.key"), "not directly inside"),
        #[cfg(unix)]
        (dir.join("link.key"), "not directly inside"),
        ("relative.key".into(), "absolute"),
    ];
    for (path, why) in cases {
        let err = read_key_file(&path, &dir).unwrap_err();
        assert!(err.to_string().contains(why), "{}: {err}", path.display());
    }
    assert_eq!(
        read_key_file(&dir.join("ok.key"), &dir).unwrap().as_str(),
        "k"
    );
    assert_eq!(
        read_key_file(&dir.join("sub/../ok.key"), &dir)
            .unwrap()
            .as_str(),
        "k"
    );

    // And through the wire: the agent names a file outside the folder.
    let server = TestServer::start(arc_server(
        root.path().join("outside.key").display().to_string(),
    ))
    .await;
    let c = ArcCredential::new(http(), &server.url("/"), dir.clone()).unwrap();
    let err = c.get_token(VAULT).await.unwrap_err();
    assert!(err.to_string().contains("not directly inside"), "{err}");
    assert_eq!(server.hits(), 1);
}

fn entra_server() -> impl Fn(&crate::http::test_server::Req, usize) -> Resp {
    |req, i| {
        let assertion = req.form("client_assertion").unwrap_or_default();
        Resp::json(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599,
            "ext_expires_in": 3599, "access_token": format!("tok-{i}-{assertion}")}),
        )
    }
}

#[tokio::test]
async fn workload_identity_rereads_the_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "jwt-one\n").unwrap();
    let server = TestServer::start(entra_server()).await;
    let c = WorkloadIdentityCredential::new(
        http(),
        &server.url(""),
        "tenant-1",
        "client-1",
        file.clone(),
    )
    .unwrap();
    let before = SystemTime::now();
    let t = c.get_token(VAULT).await.unwrap();
    assert_eq!(t.secret(), "tok-0-jwt-one");
    assert!(t.expires_on() >= before + Duration::from_secs(3599));
    std::fs::write(&file, "jwt-two").unwrap();
    assert_eq!(c.get_token(VAULT).await.unwrap().secret(), "tok-1-jwt-two");
    let req = &server.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path(), "/tenant-1/oauth2/v2.0/token");
    assert_eq!(req.form("client_id").as_deref(), Some("client-1"));
    assert_eq!(
        req.form("grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(
        req.form("scope").as_deref(),
        Some("https://vault.azure.net/.default")
    );
    assert_eq!(
        req.form("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    std::fs::remove_file(&file).unwrap();
    let err = c.get_token(VAULT).await.unwrap_err();
    assert!(err.to_string().contains("federated token file"), "{err}");
}

#[tokio::test]
async fn client_secret_posts_the_secret() {
    let server = TestServer::start(entra_server()).await;
    let c = ClientSecretCredential::new(
        http(),
        &server.url("/"),
        "t",
        "c",
        zeroize::Zeroizing::new("s3cr3t".into()),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("s3cr3t"));
    c.get_token(VAULT).await.unwrap();
    let req = &server.requests()[0];
    assert_eq!(req.form("client_secret").as_deref(), Some("s3cr3t"));
    assert_eq!(
        req.form("grant_type").as_deref(),
        Some("client_credentials")
    );
    let bad =
        ClientSecretCredential::new(http(), &server.url("/"), "../x", "c", Default::default());
    assert!(matches!(bad, Err(CredentialError::NotConfigured(_))));
}

#[cfg(unix)]
/// Writes a fake `az` script. The executable itself is written by `install` in a process of
/// its own: if this process held it open for writing, a child forked meanwhile by another test
/// thread could inherit that descriptor and make exec fail with "text file busy".
fn fake_az(dir: &std::path::Path, script: &str) -> std::path::PathBuf {
    let draft = dir.join("az.draft");
    let path = dir.join("az");
    std::fs::write(&draft, format!("#!/bin/sh\n{script}\n")).unwrap();
    let installed = std::process::Command::new("install")
        .args(["-m", "0755"])
        .arg(&draft)
        .arg(&path)
        .status()
        .unwrap();
    assert!(installed.success());
    path
}

#[cfg(unix)]
#[tokio::test]
async fn azure_cli_both_expiry_fields() {
    let dir = tempfile::tempdir().unwrap();
    let az = fake_az(
        dir.path(),
        r#"[ "$4" = "https://vault.azure.net" ] || exit 3
echo '{"accessToken":"tok","expiresOn":"2037-10-31 21:59:10.000000","expires_on":2140639150,"tokenType":"Bearer"}'"#,
    );
    let t = AzureCliCredential::new(az).get_token(VAULT).await.unwrap();
    assert_eq!((t.secret(), epoch(t.expires_on())), ("tok", 2140639150));
    let az = fake_az(
        dir.path(),
        r#"echo "{\"accessToken\":\"tok\",\"expiresOn\":\"2037-10-31 21:59:10.000000\",\"tz\":\"$TZ\"}""#,
    );
    let t = AzureCliCredential::new(az).get_token(VAULT).await.unwrap();
    assert_eq!(epoch(t.expires_on()), 2140639150);
}

#[cfg(unix)]
#[tokio::test]
async fn azure_cli_failures() {
    let dir = tempfile::tempdir().unwrap();
    let az = fake_az(
        dir.path(),
        "echo \"ERROR: Please run 'az login' to setup account. canary\" >&2; exit 1",
    );
    let err = AzureCliCredential::new(az)
        .get_token(VAULT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CredentialError::Rejected(_)) && !err.to_string().contains("canary"),
        "{err}"
    );
    let az = fake_az(
        dir.path(),
        &format!("echo '{{\"accessToken\": \"{CANARY}\"'"),
    );
    let err = AzureCliCredential::new(az)
        .get_token(VAULT)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("canary"), "{err}");
    let az = fake_az(dir.path(), "sleep 5");
    let mut c = AzureCliCredential::new(az);
    c.timeout = Duration::from_millis(200);
    assert!(
        c.get_token(VAULT)
            .await
            .unwrap_err()
            .to_string()
            .contains("within")
    );
    let c = AzureCliCredential::new(dir.path().join("nope"));
    assert!(matches!(
        c.get_token(VAULT).await,
        Err(CredentialError::NotConfigured(_))
    ));
}

fn pick(
    kind: CredentialKind,
    id: &UserAssigned,
    pairs: &[(&str, &str)],
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    from_env(kind, id, &http(), &Env::from_pairs(pairs.iter().copied()))
}

#[test]
fn detection_order() {
    let none = UserAssigned::default();
    let wi = [
        ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:1"),
    ];
    let cs = [
        ("AZURE_CLIENT_SECRET", "s"),
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:1"),
    ];
    let app = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
        ("IDENTITY_HEADER", "h"),
    ];
    let arc = [
        ("IDENTITY_ENDPOINT", "http://localhost:40342/x"),
        ("IMDS_ENDPOINT", "http://localhost:40342"),
    ];
    let legacy = [
        ("MSI_ENDPOINT", "http://127.0.0.1:1/MSI/token/"),
        ("MSI_SECRET", "s"),
    ];
    let pod = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1")];
    let kind = |pairs: &[(&str, &str)]| pick(CredentialKind::Auto, &none, pairs).unwrap().kind();
    let all: Vec<_> = wi.iter().chain(&cs).chain(&app).copied().collect();
    assert_eq!(kind(&all), "workload-identity");
    let rest: Vec<_> = cs.iter().chain(&app).copied().collect();
    assert_eq!(kind(&rest), "client-secret");
    assert_eq!(kind(&app), "app-service");
    assert_eq!(kind(&arc), "azure-arc");
    assert_eq!(kind(&legacy), "app-service-2017");
    assert_eq!(kind(&pod), "imds");
    // Explicit kinds with missing variables say what to set.
    let err = pick(CredentialKind::ClientSecret, &none, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("AZURE_CLIENT_SECRET"), "{err}");
    let err = pick(CredentialKind::AzureCli, &none, &[("PATH", "/nonexistent")]).unwrap_err();
    assert!(matches!(err, CredentialError::NotConfigured(_)));
    // Arc is system-assigned only.
    let uai = UserAssigned {
        client_id: Some("c".into()),
        ..Default::default()
    };
    assert!(matches!(
        pick(CredentialKind::Auto, &uai, &arc),
        Err(CredentialError::NotConfigured(_))
    ));
    // Two identities at once.
    let two = UserAssigned {
        client_id: Some("c".into()),
        object_id: Some("o".into()),
        resource_id: None,
    };
    let err = pick(CredentialKind::ManagedIdentity, &two, &pod).unwrap_err();
    assert!(matches!(err, CredentialError::NotConfigured(_)), "{err}");
    // The default IMDS address is refused under the loopback guard, before any request.
    let err = pick(CredentialKind::ManagedIdentity, &none, &[]).unwrap_err();
    assert!(matches!(err, CredentialError::NotConfigured(_)), "{err}");
    // A remote identity endpoint over plain http is refused when the credential is built,
    // before any request: by the loopback guard when it is on (as under tests/run), else by
    // the https rule (whose own test, `plain_http_only_to_loopback_and_imds` in http/tests.rs,
    // runs with the guard off).
    let http = HttpClient::builder().build().unwrap();
    let why = if http.loopback_only() {
        "not a loopback address"
    } else {
        "plain http"
    };
    for (endpoint, kind) in [
        ("IDENTITY_ENDPOINT", "app-service"),
        ("MSI_ENDPOINT", "app-service-2017"),
    ] {
        let env = Env::from_pairs([
            (endpoint, "http://10.0.0.1/msi"),
            ("IDENTITY_HEADER", "h"),
            ("MSI_SECRET", "s"),
        ]);
        let err = from_env(CredentialKind::Auto, &none, &http, &env).unwrap_err();
        assert!(
            matches!(&err, CredentialError::NotConfigured(m) if m.contains(why)),
            "{kind}: {err:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn auto_prefers_the_cli_when_nothing_else_is_set() {
    let dir = tempfile::tempdir().unwrap();
    fake_az(dir.path(), "exit 0");
    let path = dir.path().to_str().unwrap();
    let none = UserAssigned::default();
    assert_eq!(
        pick(CredentialKind::Auto, &none, &[("PATH", path)])
            .unwrap()
            .kind(),
        "azure-cli"
    );
    assert_eq!(
        pick(CredentialKind::AzureCli, &none, &[("PATH", path)])
            .unwrap()
            .kind(),
        "azure-cli"
    );
    let pod = [
        ("PATH", path),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1"),
    ];
    assert_eq!(
        pick(CredentialKind::Auto, &none, &pod).unwrap().kind(),
        "imds"
    );
}
