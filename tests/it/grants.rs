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
        "feature",   // the pattern needs something after the prefix
        "feature-",  // likewise
        "Feature-a", // names are matched exactly
        "DB-password",
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

#[tokio::test]
async fn no_error_message_contains_a_secret_value() {
    let (v, _, _) = vaults();
    let asks = [
        "prod-db-password",
        "missing",
        "stripe-live-key",
        "unlisted",
        "../x",
        "other@ffff",
    ];
    let (_, out) = run_guest("secrets-get", GRANTS, v, &asks).await;
    for (_, value) in DEFAULT.iter().chain(PAYMENTS) {
        assert!(!out.contains(value), "an error leaked {value}: {out}");
    }
}
