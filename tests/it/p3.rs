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
use wasm_secrets::runtime::Limits;
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
