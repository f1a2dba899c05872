//! Each credential source end to end: a real guest reads a secret through the real host,
//! whose token comes from the emulator's IMDS, App Service, Arc or Entra endpoint.

use std::time::{Duration, SystemTime};

use crate::emulator::*;
use wasm_secrets::credential::{self, UserAssigned};
use wasm_secrets_emulator::LegacyDateForm;

const GRANTS: &[&str] = &["db-password", "restricted"];

/// Reads `db-password` and `restricted` as `id`; returns the two output lines.
async fn read_both(emu: &Emulator, id: &Identity) -> Vec<String> {
    let vaults = connect(emu, id, long_cache(), fast_options());
    secrets_get(GRANTS, vaults, &["db-password", "restricted"])
        .await
        .1
}

fn assert_reads_db_password_but_not_restricted(lines: &[String]) {
    assert_eq!(lines[0], format!("db-password={DB_PASSWORD}"), "{lines:?}");
    assert_eq!(
        error_kind(&lines[1], "restricted"),
        Some("forbidden"),
        "{lines:?}"
    );
}

fn assert_reads_both(lines: &[String]) {
    assert_eq!(
        lines,
        [
            format!("db-password={DB_PASSWORD}"),
            format!("restricted={RESTRICTED}")
        ]
    );
}

#[tokio::test]
async fn imds_system_assigned_reads_but_may_not_read_restricted() {
    let emu = start().await;
    let lines = read_both(&emu, &Identity::imds(&emu)).await;
    assert_reads_db_password_but_not_restricted(&lines);
    assert_eq!(emu.count(Endpoint::Imds), 1, "one token for both reads");
}

#[tokio::test]
async fn imds_user_assigned_by_client_object_and_resource_id_reads_restricted() {
    let emu = start().await;
    for (selector, user) in user_assigned_selectors(&emu) {
        emu.reset_counters();
        let lines = read_both(&emu, &Identity::imds(&emu).user(user)).await;
        assert_eq!(lines.len(), 2, "{selector}: {lines:?}");
        assert_reads_both(&lines);
        assert_eq!(emu.count(Endpoint::Imds), 1, "{selector}");
    }
}

#[tokio::test]
async fn imds_unknown_user_assigned_identity_is_forbidden_without_retries() {
    let emu = start().await;
    let id = Identity::imds(&emu).user(by_client_id("00000000-0000-4000-8000-0000000000ff"));
    let (code, lines) = secrets_get(GRANTS, vaults_for(&emu, &id), &["db-password"]).await;
    assert_eq!(code, 1);
    assert_eq!(
        error_kind(&lines[0], "db-password"),
        Some("forbidden"),
        "{lines:?}"
    );
    assert!(lines[0].contains("not assigned"), "{lines:?}");
    assert_eq!(
        emu.count(Endpoint::Imds),
        1,
        "a 400 from IMDS is not retried"
    );
}

fn vaults_for(emu: &Emulator, id: &Identity) -> wasm_secrets::Vaults {
    connect(emu, id, long_cache(), fast_options())
}

#[tokio::test]
async fn app_service_2019_system_and_user_assigned() {
    let emu = start().await;
    let lines = read_both(&emu, &Identity::app_service(&emu)).await;
    assert_reads_db_password_but_not_restricted(&lines);

    let u = emu.config().identities.user_assigned[0].clone();
    let lines = read_both(
        &emu,
        &Identity::app_service(&emu).user(by_client_id(&u.client_id)),
    )
    .await;
    assert_reads_both(&lines);
    let by_resource = UserAssigned {
        resource_id: Some(u.resource_id),
        ..UserAssigned::default()
    };
    let lines = read_both(&emu, &Identity::app_service(&emu).user(by_resource)).await;
    assert_reads_both(&lines);

    assert_eq!(emu.count(Endpoint::AppService), 3, "one token per host");
    assert_eq!(emu.count(Endpoint::Imds), 0);
}

/// The legacy endpoint's `expires_on` is a date string; check the host reads it right.
async fn legacy_app_service_reads_and_parses(form: LegacyDateForm) {
    let emu = start_with(|c| c.legacy_expires_on = form).await;
    let id = Identity::legacy_app_service(&emu);
    let lines = read_both(&emu, &id).await;
    assert_reads_db_password_but_not_restricted(&lines);
    assert_eq!(emu.count(Endpoint::AppServiceLegacy), 1);

    let source = credential::from_env(id.kind, &id.user, &http(&emu), &id.env).unwrap();
    assert_eq!(source.kind(), "app-service-2017");
    let token = source.get_token(VAULT_RESOURCE).await.unwrap();
    let left = token.remaining_at(SystemTime::now());
    let lifetime = Duration::from_secs(emu.config().token_lifetime_secs);
    assert!(
        left <= lifetime && left + Duration::from_secs(5) >= lifetime,
        "{form:?}: expires_on parsed as {left:?} from now, the token lives {lifetime:?}"
    );
}

#[tokio::test]
async fn legacy_app_service_2017_with_a_24_hour_date() {
    legacy_app_service_reads_and_parses(LegacyDateForm::TwentyFourHour).await;
}

#[tokio::test]
async fn legacy_app_service_2017_with_an_am_pm_date() {
    legacy_app_service_reads_and_parses(LegacyDateForm::AmPm).await;
}

#[tokio::test]
async fn azure_arc_reads_the_key_file_the_agent_names() {
    let emu = start().await;
    let lines = read_both(&emu, &Identity::arc(&emu, &emu.arc_token_dir())).await;
    assert_reads_db_password_but_not_restricted(&lines);
    assert_eq!(
        emu.count(Endpoint::Arc),
        2,
        "the challenge, then the request with the key"
    );
}

#[tokio::test]
async fn azure_arc_refuses_a_key_file_outside_its_token_folder() {
    let emu = start().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let (code, lines) = secrets_get(
        GRANTS,
        connect(
            &emu,
            &Identity::arc(&emu, elsewhere.path()),
            long_cache(),
            fast_options(),
        ),
        &["db-password"],
    )
    .await;
    assert_eq!(code, 1);
    assert_eq!(
        error_kind(&lines[0], "db-password"),
        Some("unavailable"),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("not directly inside the token folder"),
        "{lines:?}"
    );
    assert_eq!(emu.count(Endpoint::Arc), 1, "the key is never sent");
}

#[tokio::test]
async fn azure_arc_with_a_missing_token_folder_is_unavailable() {
    let emu = start().await;
    let missing = emu.arc_token_dir().join("no-such-folder");
    let (_, lines) = secrets_get(
        GRANTS,
        connect(
            &emu,
            &Identity::arc(&emu, &missing),
            long_cache(),
            fast_options(),
        ),
        &["db-password"],
    )
    .await;
    assert_eq!(
        error_kind(&lines[0], "db-password"),
        Some("unavailable"),
        "{lines:?}"
    );
    assert!(lines[0].contains("cannot be resolved"), "{lines:?}");
}

#[tokio::test]
async fn azure_arc_takes_no_user_assigned_identity() {
    let emu = start().await;
    let u = emu.config().identities.user_assigned[0].client_id.clone();
    let id = Identity::arc(&emu, &emu.arc_token_dir()).user(by_client_id(&u));
    let err = try_connect(&emu, &id, long_cache(), fast_options()).expect_err("refused");
    assert!(format!("{err:#}").contains("system-assigned"), "{err:#}");
}

#[tokio::test]
async fn workload_identity_exchanges_the_federated_token_file() {
    let emu = start().await;
    let fed = emu.config().identities.federated[0].clone();
    let file = crate::harness::temp_file(".jwt", fed.assertion.as_bytes());
    let lines = read_both(&emu, &Identity::workload(&emu, &fed.client_id, file.path())).await;
    assert_reads_db_password_but_not_restricted(&lines);
    assert_eq!(emu.count(Endpoint::Entra), 1);
    assert_eq!(emu.count(Endpoint::Imds), 0);
}

#[tokio::test]
async fn workload_identity_reads_the_token_file_again_for_each_token() {
    let emu = start().await;
    let fed = emu.config().identities.federated[0].clone();
    let file = crate::harness::temp_file(".jwt", b"an-expired-assertion");
    let vaults = vaults_for(&emu, &Identity::workload(&emu, &fed.client_id, file.path()));
    let (_, lines) = secrets_get(GRANTS, vaults.clone(), &["db-password"]).await;
    assert_eq!(
        error_kind(&lines[0], "db-password"),
        Some("forbidden"),
        "{lines:?}"
    );
    // The kubelet rotates the file; the same host picks the new assertion up.
    std::fs::write(file.path(), &fed.assertion).unwrap();
    let (code, lines) = secrets_get(GRANTS, vaults, &["db-password"]).await;
    assert_eq!(
        (code, lines),
        (0, vec![format!("db-password={DB_PASSWORD}")])
    );
    assert_eq!(emu.count(Endpoint::Entra), 2);
}

#[tokio::test]
async fn workload_identity_with_a_wrong_assertion_is_forbidden() {
    let emu = start().await;
    let fed = emu.config().identities.federated[0].clone();
    let file = crate::harness::temp_file(".jwt", b"not-the-assertion");
    let id = Identity::workload(&emu, &fed.client_id, file.path());
    let (code, lines) = secrets_get(GRANTS, vaults_for(&emu, &id), &["db-password"]).await;
    assert_eq!(code, 1);
    assert_eq!(
        error_kind(&lines[0], "db-password"),
        Some("forbidden"),
        "{lines:?}"
    );
    assert!(!lines[0].contains("not-the-assertion"), "{lines:?}");
}

#[tokio::test]
async fn client_secret_reads_and_a_wrong_secret_is_forbidden() {
    let emu = start().await;
    let sp = emu.config().identities.service_principals[0].clone();
    let good = Identity::client_secret(&emu, &sp.client_id, &sp.client_secret);
    assert_reads_db_password_but_not_restricted(&read_both(&emu, &good).await);
    assert_eq!(emu.count(Endpoint::Entra), 1);

    let bad = Identity::client_secret(&emu, &sp.client_id, "wrong-client-secret");
    let (_, lines) = secrets_get(GRANTS, vaults_for(&emu, &bad), &["db-password"]).await;
    assert_eq!(
        error_kind(&lines[0], "db-password"),
        Some("forbidden"),
        "{lines:?}"
    );
    assert!(!lines[0].contains("wrong-client-secret"), "{lines:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn azure_cli_token_from_a_fake_az_reads_the_vault() {
    let emu = start().await;
    let system = emu.config().identities.system.clone();
    let token = emu.mint_token(VAULT_RESOURCE, &system.client_id, &system.object_id);
    let expires_on = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3000;
    let dir = tempfile::tempdir().unwrap();
    let az = dir.path().join("az");
    let draft = dir.path().join("az.draft");
    std::fs::write(
        &draft,
        format!(
            "#!/bin/sh\necho '{{\"accessToken\":\"{token}\",\"expires_on\":{expires_on},\"tokenType\":\"Bearer\"}}'\n"
        ),
    )
    .unwrap();
    // Installed by a process of its own: a descriptor open for writing here could leak into a
    // child forked by another test and make exec fail with "text file busy".
    let installed = std::process::Command::new("install")
        .args(["-m", "0755"])
        .arg(&draft)
        .arg(&az)
        .status()
        .unwrap();
    assert!(installed.success());
    let id = Identity {
        kind: wasm_secrets::credential::CredentialKind::AzureCli,
        user: UserAssigned::default(),
        env: wasm_secrets::credential::Env::from_pairs([(
            "PATH",
            dir.path().display().to_string(),
        )]),
    };
    let lines = read_both(&emu, &id).await;
    assert_reads_db_password_but_not_restricted(&lines);
}

#[tokio::test(flavor = "multi_thread")]
async fn entra_throttling_and_server_errors_are_retried() {
    let emu = start().await;
    let sp = emu.config().identities.service_principals[0].clone();
    let identity = Identity::client_secret(&emu, &sp.client_id, &sp.client_secret);
    emu.set_faults(
        Endpoint::Entra,
        vec![
            Fault::Status {
                status: 503,
                retry_after: None,
                body: None,
            },
            Fault::Status {
                status: 429,
                retry_after: Some(0),
                body: None,
            },
        ],
    );
    let (code, lines) = secrets_get(
        &["db-password"],
        vaults_for(&emu, &identity),
        &["db-password"],
    )
    .await;
    assert_eq!(lines, [format!("db-password={DB_PASSWORD}")]);
    assert_eq!(code, 0);
    assert_eq!(
        emu.count(Endpoint::Entra),
        3,
        "two failures, then the token"
    );
}
