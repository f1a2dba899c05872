//! Section 12, use-only secrets, at the egress hook a guest's outgoing requests go through
//! (`EgressHooks::send_request`, the same for every guest language and WASI version):
//!
//! - a request whose `X-Api-Key` header the host fills from a use-only grant
//!   (`{{secret:key}}`, the value from the cache, the response scrubbed) vs the same request
//!   with the header set to the same value by the guest, to the same loopback upstream, in
//!   paired rounds;
//! - the OAuth 2 path's amplification: token exchanges per 10,000 requests.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::net::TcpListener;
use wasm_secrets::egress::{EgressHooks, EgressPolicy, EgressRule};
use wasm_secrets::{Grants, SecretsCtx, Vaults};
use wasmtime_wasi_http::WasiHttpHooks;

/// A loopback server answering every request with `body`; `count` counts them.
async fn server(body: &'static str, count: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    count.fetch_add(1, Ordering::Relaxed);
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(body.as_bytes()),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Sends `GET http://addr/` with `X-Api-Key: api_key` through `hooks` and reads the response.
async fn send(hooks: &mut EgressHooks, addr: SocketAddr, api_key: &str) {
    let request = http::Request::get(format!("http://{addr}/"))
        .header("x-api-key", api_key)
        .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
        .unwrap();
    let sent = Box::into_pin(hooks.send_request(request, None, Box::new(async { Ok(()) })));
    let (response, io) = sent.await.expect("the upstream answers");
    tokio::spawn(Box::into_pin(io));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    std::hint::black_box(body);
}

/// Section 12 (see the module's doc), with the vault `vaults` holding `db-password`.
pub async fn run(vaults: &Vaults) {
    println!("12. use-only secrets");
    let upstream = server("ok: request received\n", Arc::default()).await;
    let policy = Arc::new(
        EgressPolicy::new(vec![EgressRule::http(upstream.to_string())], None, true).unwrap(),
    );
    let grants = Grants::parse([format!("use:key=db-password for {upstream}")]).unwrap();
    let mut hooks = EgressHooks::new(
        policy.clone(),
        SecretsCtx::new("bench", grants, vaults.clone()),
    );
    let value = "s3cr3t-db-password";
    // Warm the cache and the connection paths.
    for _ in 0..200 {
        send(&mut hooks, upstream, "{{secret:key}}").await;
        send(&mut hooks, upstream, value).await;
    }
    // Paired at the request: each injected request is timed next to a plain one, so the
    // machine's drift over the run falls on both alike; the medians of the two sides'
    // latencies are compared. Which side goes first is drawn at random for every pair: with a
    // fixed pattern (first, second, second, first, ...) one side would always have the other
    // two requests back, and work a request leaves behind (a connection closing) would fall
    // on one side only.
    let n = 20_000;
    let (mut injected, mut plain) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut coin = super::Coin::new(0x9e37_79b9_7f4a_7c15);
    for _ in 0..n {
        let mut timed = async |header: &str| {
            let start = Instant::now();
            send(&mut hooks, upstream, header).await;
            start.elapsed().as_nanos()
        };
        if coin.a_first() {
            injected.push(timed("{{secret:key}}").await);
            plain.push(timed(value).await);
        } else {
            plain.push(timed(value).await);
            injected.push(timed("{{secret:key}}").await);
        }
    }
    injected.sort_unstable();
    plain.sort_unstable();
    let at = |v: &[u128], q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64;
    let ratio = |q: f64| at(&injected, q) / at(&plain, q);
    println!(
        "   a request with its header filled by the host: {:.1} us (median); set by the guest: {:.1} us; {:.3}x the median ({:.3}x at p25, {:.3}x at p75; {n} pairs, each in random order)   (budget: <= 1.05x)",
        at(&injected, 0.5) / 1000.0,
        at(&plain, 0.5) / 1000.0,
        ratio(0.5),
        ratio(0.25),
        ratio(0.75),
    );

    // OAuth 2: one exchange per token lifetime, however many requests.
    let exchanges = Arc::new(AtomicU64::new(0));
    let login = server(
        r#"{"access_token":"bench-access-token-0123456789","token_type":"Bearer","expires_in":3600}"#,
        exchanges.clone(),
    )
    .await;
    let grant =
        format!("use:crm=db-password+db-password for {upstream} as oauth2 http://{login}/token");
    let mut hooks = EgressHooks::new(
        policy,
        SecretsCtx::new(
            "bench-oauth",
            Grants::parse([grant]).unwrap(),
            vaults.clone(),
        ),
    );
    let requests = 10_000;
    let start = Instant::now();
    for _ in 0..requests {
        send(&mut hooks, upstream, "Bearer {{secret:crm}}").await;
    }
    println!(
        "   oauth2: {} token exchange(s) for {requests} requests ({} us per request)\n",
        exchanges.load(Ordering::Relaxed),
        start.elapsed().as_micros() / requests
    );
}
