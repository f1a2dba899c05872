//! WASI 0.3 components (`wasi:cli/run@0.3.0` commands, `wasi:http/handler@0.3.0` handlers) run
//! and served beside WASI 0.2 ones, on the same runtime: the languages table holds
//! `secrets-get-p3` and `http-hello-p3` to the Rust answers byte for byte (tests/it/languages.rs),
//! tests/it/hostile.rs holds a 0.3 command to its time and fuel limits, and here a 0.3 handler
//! is held to its request time limit, gives its slot back, and is served a fresh instance per
//! request.

use crate::emulator;
use crate::serve::{ServeBinary, start_component};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasm_secrets::runtime::{Limits, Reuse};
use wasm_secrets_cli::server::{EgressPolicy, ServeOptions};

/// A 0.3 handler waiting on a slow vault is stopped at its 300 ms limit and answered 504 in
/// time, wave after wave, with its two slots given back each time (not 503 busy); the vault
/// read the requests shared lands afterwards and is served.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_0_3_handler_past_its_timeout_gets_504_and_gives_its_slot_back() {
    let emu = emulator::start().await;
    emu.set_vault_latency("main", Duration::from_secs(3));
    let options = ServeOptions {
        limits: Limits {
            timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        },
        max_concurrent: 2,
        ..ServeOptions::default()
    };
    let s = Arc::new(
        start_component(
            &emu,
            "http-hello-p3",
            &["db-password"],
            EgressPolicy::deny_all(),
            options,
        )
        .await,
    );
    for wave in 0..3 {
        let t = Instant::now();
        let both = futures::future::join_all((0..2).map(|_| s.get("/db-password"))).await;
        for (status, body) in &both {
            assert_eq!(*status, 504, "wave {wave}: {body}");
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    let t = Instant::now();
    loop {
        let (status, body) = s.get("/db-password").await;
        if status == 200 {
            assert_eq!(body, "hello: read secret 'db-password' (18 characters)\n");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the vault read never landed"
        );
    }
}

/// Sixteen requests at once (the test engine's pool) to a 0.3 handler, each in a fresh
/// instance, reading through the async `get` of `wasm-secrets:secrets@0.2.0`: every one is
/// answered with its own secret's description, and an ungranted name is refused without its
/// value.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_0_3_handler_answers_many_requests_at_once() {
    let component = crate::harness::component("http-hello-p3");
    let imports: Vec<String> = component
        .component_type()
        .imports(crate::harness::engine())
        .map(|(name, _)| name.to_owned())
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i == "wasm-secrets:secrets/store@0.2.0"),
        "{imports:?}"
    );
    let emu = emulator::start().await;
    let s = Arc::new(
        start_component(
            &emu,
            "http-hello-p3",
            &["db-password", "api-key"],
            EgressPolicy::deny_all(),
            ServeOptions {
                max_concurrent: 16,
                ..ServeOptions::default()
            },
        )
        .await,
    );
    let answers = futures::future::join_all((0..16).map(|i| {
        let s = s.clone();
        async move {
            let name = ["db-password", "api-key", "stripe-key"][i % 3];
            (name, s.get(&format!("/{name}")).await)
        }
    }))
    .await;
    for (name, (status, body)) in answers {
        match name {
            "stripe-key" => {
                assert_eq!(status, 403, "{body}");
                assert!(body.starts_with("not-granted: "), "{body}");
            }
            _ => {
                assert_eq!(status, 200, "{name}: {body}");
                assert!(
                    body.starts_with(&format!("hello: read secret '{name}'")),
                    "{body}"
                );
            }
        }
        assert!(!body.contains(emulator::DB_PASSWORD) && !body.contains(emulator::API_KEY));
    }
}

/// A Spin 4 component built with spin-sdk 7 (`guest/components/spin-hello`, written as Spin's
/// docs show, with no knowledge of wasm-secrets) runs under the real `wasm-secrets serve`
/// unchanged and reads its variables through the grants: `db_password` reads the secret
/// `db-password`; an ungranted variable, or one its vault lacks, is `undefined` (404) without
/// any value; an invalid name is `invalid-name` (400).
#[tokio::test(flavor = "multi_thread")]
async fn a_spin_4_component_reads_its_granted_variables_under_serve() {
    let emu = emulator::start().await;
    let args: Vec<std::ffi::OsString> = vec![
        "--grant".into(),
        "db-password".into(),
        "--grant".into(),
        "no-such-secret".into(),
        crate::harness::guest("spin_hello").into(),
    ];
    let s = ServeBinary::start_with(&emu, &args, &[]).await;
    for path in ["/", "/db_password", "/db-password"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let name = if path == "/" {
            "db_password"
        } else {
            &path[1..]
        };
        assert_eq!(
            body,
            format!("hello: read variable '{name}' (18 characters)\n")
        );
    }
    for (path, status, kind) in [
        ("/api_key", 404, "undefined: "),
        ("/stripe_key", 404, "undefined: "),
        ("/no_such_secret", 404, "undefined: "),
        ("/bad!", 400, "invalid-name: "),
    ] {
        let (got, body) = s.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.starts_with(kind), "{path}: {body}");
        for value in emulator::ALL_VALUES {
            assert!(!body.contains(value), "{path}: {body}");
        }
    }
}

/// A hostile 0.3 handler is held to its request's time limit however it tries to outlive it:
/// a body that never ends is cut at the limit (the client's read ends in time), and a handler
/// waiting on 10,000 tasks of its own is answered 504 in time; each time the only slot is free
/// again for the next request.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_wasi_0_3_handler_is_stopped_at_its_time_limit() {
    let emu = emulator::start().await;
    let options = ServeOptions {
        limits: Limits {
            timeout: Some(Duration::from_millis(500)),
            ..Limits::default()
        },
        max_concurrent: 1,
        ..ServeOptions::default()
    };
    let s = start_component(&emu, "p3-hostile", &[], EgressPolicy::deny_all(), options).await;

    let t = Instant::now();
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/endless-body")
        .header("host", "p3-hostile")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let mut response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut received = 0;
    while let Some(Ok(frame)) = response.body_mut().frame().await {
        received += frame.data_ref().map_or(0, |d| d.len());
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the body still streams after {:?} ({received} bytes)",
            t.elapsed()
        );
    }
    assert!(received > 0, "the body never started");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(
        s.get("/").await,
        (200, "ok\n".to_owned()),
        "the slot was not given back"
    );

    let t = Instant::now();
    let (status, body) = s.get("/tasks?n=10000").await;
    assert_eq!(status, 504, "{body}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(
        s.get("/").await,
        (200, "ok\n".to_owned()),
        "the slot was not given back"
    );
}

/// A 0.3 handler's instance serves several requests and keeps its memory between them, up to
/// its request bound; a trap retires it (the trapping request gets 500 and the next a fresh
/// instance), and so does a request past its time limit (504), whether it waits or spins in
/// wasm. With a bound of 1, every request gets a fresh instance.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_0_3_instance_is_reused_until_its_bound_a_trap_or_a_timeout() {
    let emu = emulator::start().await;
    let options = |max_requests| ServeOptions {
        limits: Limits {
            timeout: Some(Duration::from_millis(500)),
            ..Limits::default()
        },
        max_concurrent: 4,
        reuse: Reuse {
            max_requests,
            ..Reuse::default()
        },
        ..ServeOptions::default()
    };
    let s = start_component(
        &emu,
        "p3-hostile",
        &[],
        EgressPolicy::deny_all(),
        options(3),
    )
    .await;
    let count = async |s: &crate::serve::Running| {
        let (status, body) = s.get("/count").await;
        assert_eq!(status, 200, "{body}");
        body.trim()
            .strip_prefix("count: ")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{body}"))
    };
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(count(&s).await);
    }
    assert_eq!(seen, [1, 2, 3, 1], "kept across requests, retired after 3");

    assert_eq!(count(&s).await, 2);
    let (status, body) = s.get("/trap").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(count(&s).await, 1, "the trapped instance served again");

    assert_eq!(count(&s).await, 2);
    let t = Instant::now();
    let (status, body) = s.get("/tasks?n=1").await;
    assert_eq!(status, 504, "{body}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(count(&s).await, 1, "the timed-out instance served again");

    assert_eq!(count(&s).await, 2);
    let t = Instant::now();
    let (status, body) = s.get("/spin").await;
    assert_eq!(status, 504, "{body}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(count(&s).await, 1, "the spinning instance served again");

    let fresh = start_component(
        &emu,
        "p3-hostile",
        &[],
        EgressPolicy::deny_all(),
        options(1),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(count(&fresh).await, 1);
    }
}

/// One 0.3 instance serves sixteen requests at once while the vault takes 1.5 s for each read
/// (sixteen names, so sixteen vault calls): the requests, sent 60 ms apart, wait together, not
/// one after another (that would take 24 s), all in one instance that had all sixteen in
/// flight at once. (A burst arriving in the same instant may start more instances: an instance
/// takes a new request only once the guest is waiting, as wasmtime's dispatcher does.)
#[tokio::test(flavor = "multi_thread")]
async fn one_wasi_0_3_instance_serves_sixteen_requests_at_once_while_the_vault_is_slow() {
    let emu = emulator::start().await;
    let names: Vec<String> = (0..16).map(|i| format!("missing-{i}")).collect();
    let grants: Vec<&str> = names.iter().map(String::as_str).collect();
    let s = Arc::new(
        start_component(
            &emu,
            "p3-hostile",
            &grants,
            EgressPolicy::deny_all(),
            ServeOptions {
                max_concurrent: 16,
                ..ServeOptions::default()
            },
        )
        .await,
    );
    assert_eq!(s.get("/count").await.0, 200, "an instance is ready");
    emu.set_vault_latency("main", Duration::from_millis(1500));
    let t = Instant::now();
    let answers = futures::future::join_all(names.iter().enumerate().map(|(i, name)| {
        let s = s.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(60) * i as u32).await;
            s.get(&format!("/get/{name}")).await
        }
    }))
    .await;
    let elapsed = t.elapsed();
    let mut instances = std::collections::BTreeSet::new();
    let mut most = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert!(body.ends_with(" outcome=not-found\n"), "{body}");
        let field = |key: &str| {
            body.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("{body}"))
                .to_owned()
        };
        instances.insert(field("instance="));
        most = most.max(field("most-at-once=").parse::<usize>().unwrap());
    }
    assert!(
        elapsed < Duration::from_secs(7),
        "16 requests of 1.5 s each took {elapsed:?}: serialized"
    );
    assert_eq!(instances.len(), 1, "{answers:?}");
    assert_eq!(most, 16, "not all in flight at once: {answers:?}");
}

/// A 0.3 handler signs, verifies, wraps and unwraps through the async `keys` of
/// `wasm-secrets:secrets@0.2.0`, under the same key grants as 0.2 guests: the signature checks
/// out on the vault's public key, independently of the vault; an ungranted key and an operation
/// the grant leaves out are refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_0_3_handler_uses_its_granted_keys_through_the_async_interface() {
    let emu = emulator::start().await;
    let s = start_component(
        &emu,
        "http-hello-p3",
        &[
            "key:signer=jwt-signing-key:sign,verify",
            "key:kek=data-kek:wrap-key,unwrap-key",
            "key:sign-only=jwt-signing-key:sign",
        ],
        EgressPolicy::deny_all(),
        ServeOptions::default(),
    )
    .await;
    let (status, body) = s.get("/sign/signer").await;
    assert_eq!(status, 200, "{body}");
    let hex = body
        .trim()
        .strip_prefix("signed with key 'signer': ")
        .and_then(|rest| rest.strip_suffix(", verified: true"))
        .unwrap_or_else(|| panic!("{body}"));
    let signature: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let jwk = emu.public_key_jwk("main", "jwt-signing-key", None).unwrap();
    assert!(crate::keys::es256_verifies(&jwk, &[7u8; 32], &signature));

    assert_eq!(
        s.get("/wrap/kek").await,
        (
            200,
            "wrapped with key 'kek': 256 bytes, unwrapped: equal\n".to_owned()
        )
    );
    let (status, body) = s.get("/sign/data-kek").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.starts_with("not-granted: "), "{body}");
    let (status, body) = s.get("/sign/sign-only").await;
    assert_eq!(status, 403, "verify is not granted: {body}");
    assert!(body.starts_with("not-granted: "), "{body}");
}

/// `serve` of a component that exports neither handler says so in one line, naming both.
#[test]
fn serve_refuses_a_component_without_an_http_handler_in_one_line() {
    let r = crate::harness::run_cli(
        crate::harness::cli()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .arg(crate::harness::guest("secrets-get")),
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("not a wasi:http handler")
            && r.stderr.contains("wasi:http/incoming-handler@0.2")
            && r.stderr.contains("wasi:http/handler@0.3"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
}
