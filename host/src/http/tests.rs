use super::test_server::{Resp, TestServer};
use super::*;

fn client() -> HttpClient {
    HttpClient::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn guarded() -> HttpClient {
    HttpClient::builder().loopback_only(true).build().unwrap()
}

fn get(c: &HttpClient, url: &str) -> reqwest::RequestBuilder {
    c.request(Method::GET, Url::parse(url).unwrap())
}

#[tokio::test]
async fn reads_a_small_body() {
    let server = TestServer::start(|_, _| Resp::json(200, serde_json::json!({"a": 1}))).await;
    let r = client()
        .send(get(&client(), &server.url("/x")))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["a"], 1);
    assert!(!format!("{r:?}").contains("\"a\""));
}

#[tokio::test]
async fn refuses_a_10_mb_body_with_content_length() {
    let server = TestServer::start(|_, _| Resp::new(200).body(vec![b'x'; 10 << 20])).await;
    let c = client();
    let err = c.send(get(&c, &server.url("/big"))).await.unwrap_err();
    assert_eq!(err, HttpError::TooLarge(DEFAULT_MAX_BODY));
}

#[tokio::test]
async fn refuses_a_10_mb_body_streamed_without_length() {
    let server =
        TestServer::start(|_, _| Resp::new(200).body(vec![b'x'; 10 << 20]).until_close()).await;
    let c = client();
    let err = c.send(get(&c, &server.url("/big"))).await.unwrap_err();
    assert_eq!(err, HttpError::TooLarge(DEFAULT_MAX_BODY));
}

#[tokio::test]
async fn times_out() {
    let server = TestServer::start(|_, _| Resp::new(200).delay(Duration::from_secs(5))).await;
    let c = HttpClient::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = c.send(get(&c, &server.url("/slow"))).await.unwrap_err();
    assert!(
        matches!(err, HttpError::Timeout(_) | HttpError::Transport(_)),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn guard_allows_loopback_and_localhost() {
    let server = TestServer::start(|_, _| Resp::new(204)).await;
    let c = guarded();
    let r = c.send(get(&c, &server.url("/"))).await.unwrap();
    assert_eq!(r.status, 204);
    let by_name = format!("http://localhost:{}/", server.addr.port());
    assert_eq!(c.send(get(&c, &by_name)).await.unwrap().status, 204);
}

#[tokio::test]
async fn guard_refuses_remote_destinations_before_connecting() {
    let c = guarded();
    for url in [
        "http://10.0.0.1/x",
        "https://10.0.0.1/x",
        "http://169.254.169.254/metadata/identity/oauth2/token",
        "https://example.com/",
        "https://vault.azure.net/",
        "http://[2001:db8::1]/",
        "https://unresolvable.invalid/",
    ] {
        let err = c.send(get(&c, url)).await.unwrap_err();
        assert!(matches!(err, HttpError::Refused(_)), "{url}: {err}");
        assert!(err.to_string().contains(LOOPBACK_ONLY_ENV), "{err}");
    }
}

#[test]
fn plain_http_only_to_loopback_and_imds() {
    let ok = |u: &str, guard| check_destination(&Url::parse(u).unwrap(), guard);
    assert!(ok("http://127.0.0.1:1/", false).is_ok());
    assert!(ok("http://127.9.9.9/", true).is_ok());
    assert!(ok("http://[::1]:8080/", true).is_ok());
    assert!(ok("http://localhost:40342/", true).is_ok());
    assert!(ok("http://vault.localhost/", true).is_ok());
    assert!(ok("http://169.254.169.254/metadata", false).is_ok());
    assert!(ok("https://example.vault.azure.net/", false).is_ok());
    assert!(ok("http://example.vault.azure.net/", false).is_err());
    assert!(ok("http://169.254.169.253/", false).is_err());
    assert!(ok("http://10.0.0.1/", false).is_err());
    assert!(ok("ftp://127.0.0.1/", false).is_err());
    assert!(ok("http://[::ffff:127.0.0.1]/", true).is_ok());
}

#[test]
fn bad_ca_file_is_a_setup_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a cert").unwrap();
    let err = HttpClient::builder().extra_ca(&path).build().unwrap_err();
    assert!(matches!(err, HttpError::Setup(_)), "{err}");
    let missing = HttpClient::builder()
        .extra_ca(dir.path().join("nope.pem"))
        .build()
        .unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
}

#[test]
fn json_errors_do_not_quote_the_body() {
    let r = HttpResponse {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: Zeroizing::new(br#"{"n": "canary-token-123"}"#.to_vec()),
    };
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct N {
        n: u64,
    }
    let err = r.json::<N>().unwrap_err();
    assert!(!err.to_string().contains("canary"), "{err}");
}
