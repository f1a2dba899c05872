//! Every grant form allows what it should and nothing more, through the real host and guest.

use crate::harness::{Counting, run_guest};
use wasm_secrets::Vaults;

const DEFAULT: &[(&str, &str)] = &[
    ("db-password", "v-db-password"),
    ("prod-db-password", "v-prod-db"),
    ("feature-a", "v-feature-a"),
    ("feature-b", "v-feature-b"),
    ("other", "v-other"),
    ("unlisted", "v-unlisted"),
];
const PAYMENTS: &[(&str, &str)] = &[
    ("stripe-key", "v-stripe"),
    ("stripe-live-key", "v-stripe-live"),
];

const GRANTS: &[&str] = &[
    "db-password",
    "db=prod-db-password",
    "payments/stripe-key",
    "stripe=payments/stripe-live-key",
    "feature-*",
    "other@local",
    "missing",
];

fn vaults() -> (Vaults, std::sync::Arc<Counting>, std::sync::Arc<Counting>) {
    let (d, p) = (Counting::new(DEFAULT), Counting::new(PAYMENTS));
    let mut v = Vaults::new();
    v.insert("default", d.clone());
    v.insert("payments", p.clone());
    (v, d, p)
}

#[tokio::test]
async fn each_grant_form_reads_its_target() {
    let (v, _, _) = vaults();
    let (code, out) = run_guest(
        "secrets-get",
        GRANTS,
        v,
        &[
            "db-password",
            "db",
            "stripe-key",
            "stripe",
            "feature-a",
            "feature-b",
            "other",
            "other@local",
            // Key Vault names are case-insensitive: so are grants.
            "DB-Password",
            "Feature-A",
            "OTHER@LOCAL",
        ],
    )
    .await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "db-password=v-db-password",
            "db=v-prod-db",
            "stripe-key=v-stripe",
            "stripe=v-stripe-live",
            "feature-a=v-feature-a",
            "feature-b=v-feature-b",
            "other=v-other",
            "other@local=v-other",
            "DB-Password=v-db-password",
            "Feature-A=v-feature-a",
            "OTHER@LOCAL=v-other",
        ]
    );
    assert_eq!(code, 0);
}

#[tokio::test]
async fn names_outside_the_grants_are_refused_without_a_backend_call() {
    let (v, d, p) = vaults();
    let denied = [
        "prod-db-password", // only reachable through its alias
        "stripe-live-key",  // likewise, in another vault
        "unlisted",
        "feature",  // the pattern needs something after the prefix
        "feature-", // likewise
        // (Names are case-insensitive, as in Key Vault: `Feature-a` is `feature-a`.)
        "other@0123abcd", // the grant pins another version
    ];
    let (code, out) = run_guest("secrets-get", GRANTS, v, &denied).await;
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), denied.len(), "{out}");
    for (line, name) in lines.iter().zip(denied) {
        let shown = name.split('@').next().unwrap();
        assert!(
            line.starts_with(&format!("{name}: not-granted: ")),
            "{line}"
        );
        assert!(line.contains(shown), "the message names the secret: {line}");
    }
    assert_eq!(
        d.calls() + p.calls(),
        0,
        "a denied name must cost no backend call"
    );
}

#[tokio::test]
async fn missing_secret_is_not_found() {
    let (v, _, _) = vaults();
    let (code, out) = run_guest("secrets-get", GRANTS, v, &["missing"]).await;
    assert_eq!(code, 1);
    assert!(out.starts_with("missing: not-found: "), "{out}");
}

#[tokio::test]
async fn list_returns_only_granted_names_that_exist() {
    let (v, _, _) = vaults();
    let (code, out) = run_guest("secrets-get", GRANTS, v, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "db",
            "db-password",
            "feature-a",
            "feature-b",
            "other",
            "stripe",
            "stripe-key"
        ]
    );
}

#[tokio::test]
async fn no_grants_means_nothing_is_readable() {
    let (v, d, p) = vaults();
    let (code, out) = run_guest("secrets-get", &[], v, &["db-password"]).await;
    assert_eq!(code, 1);
    assert!(out.starts_with("db-password: not-granted: "), "{out}");
    let (v2, _, _) = vaults();
    let (_, listed) = run_guest("secrets-get", &[], v2, &[]).await;
    assert_eq!(listed, "");
    assert_eq!(d.calls() + p.calls(), 0);
}

/// Every error a guest can get, through the emulator's Key Vault, including answers whose
/// bodies carry secret values right where an error message could pick them up. The run also
/// reads one value, to show values are in play: the check is on the error lines only.
#[tokio::test]
async fn no_error_message_contains_a_secret_value() {
    use crate::emulator::{self as e, Endpoint, Fault};
    let emu = e::start().await;
    let grants = [
        "db-password",
        "restricted",
        "disabled-secret",
        "no-such-secret",
    ];
    let asks = [
        "db-password",
        "restricted",
        "disabled-secret",
        "no-such-secret",
        "api-key",
        "bad name!",
        "db-password@0000",
    ];
    let (_, lines) = e::secrets_get(&grants, e::imds_vaults(&emu), &asks).await;
    assert_eq!(lines.len(), asks.len(), "{lines:?}");
    assert_eq!(lines[0], format!("db-password={}", e::DB_PASSWORD));
    let mut errors: Vec<String> = lines[1..].to_vec();

    // Vault answers that hold a value: as an error message (500, 403), and inside a body that
    // does not parse (a string where a boolean belongs, which serde would quote).
    let bodies = [
        (
            500,
            serde_json::json!({"error": {"code": "InternalError", "message": e::API_KEY}}),
        ),
        (
            403,
            serde_json::json!({"error": {"code": "Forbidden", "message": e::API_KEY}}),
        ),
        (
            200,
            serde_json::json!({"value": e::API_KEY, "id": "x", "attributes": {"enabled": e::API_KEY}}),
        ),
        (200, serde_json::json!({"value": {"nested": e::API_KEY}})),
    ];
    for (status, body) in bodies {
        emu.set_standing_fault(
            Endpoint::KeyVault,
            Some(Fault::Status {
                status,
                retry_after: None,
                body: Some(body.to_string()),
            }),
        );
        let (code, lines) = e::secrets_get(&["api-key"], e::imds_vaults(&emu), &["api-key"]).await;
        assert_eq!(code, 1, "{status}: {lines:?}");
        assert!(lines[0].starts_with("api-key: "), "{status}: {lines:?}");
        errors.extend(lines);
    }
    assert_eq!(errors.len(), asks.len() - 1 + 4);
    for line in &errors {
        for value in e::ALL_VALUES {
            assert!(!line.contains(value), "an error leaked {value}: {line}");
        }
    }
}

#[tokio::test]
async fn an_invalid_name_reaches_the_audit_log_escaped_and_cut() {
    use std::io::Write;
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let sink = std::sync::Arc::new(wasm_secrets::audit::JsonLines::new(Box::new(
        buffer.clone(),
    )));
    let (v, _, _) = vaults();
    let ctx =
        wasm_secrets::SecretsCtx::new("auditee", wasm_secrets::Grants::parse(GRANTS).unwrap(), v)
            .with_audit(sink);
    // A forged log line, then half a megabyte.
    let name = format!("x\"}}\n{{\"outcome\":\"ok\"{}", "y".repeat(500_000));
    let e = ctx.get(&name).await.unwrap_err();
    assert_eq!(e.kind().as_str(), "invalid-name");
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one line, nothing forged: {text}");
    assert!(text.len() < 600, "{} bytes", text.len());
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["outcome"], "invalid-name");
    assert_eq!(event["name_bytes"], name.len());
    let logged = event["name"].as_str().unwrap();
    assert!(
        logged.len() <= 160 && logged.starts_with("x\\\"}\\n{\\\"outcome"),
        "{logged}"
    );
    // A valid name goes in as it is, without a length.
    ctx.get("db-password").await.unwrap();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let event: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(event["name"], "db-password");
    assert!(event.get("name_bytes").is_none());
}
