//! The emulator's request handling under any input: any method, path, query, header and body
//! sent to any of its services gets an HTTP answer, never a panic or a dropped connection, and
//! the emulator keeps serving.

mod common;

use proptest::prelude::*;

#[test]
fn any_request_gets_an_http_answer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(common::start());
    let http = common::client(&emu);
    // Every service but the admin endpoint (whose job is to change the emulator's behaviour).
    let bases = [
        emu.imds_base(),
        emu.app_service_endpoint(),
        emu.legacy_msi_endpoint(),
        emu.arc_identity_endpoint(),
        emu.authority_host_http(),
        emu.authority_host(),
        emu.default_vault_url(),
    ];
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW",
    ];
    let config = ProptestConfig {
        cases: 192,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        base in 0..bases.len(),
        method in 0..methods.len(),
        path in "(/[A-Za-z0-9%._~:@!$&'()*+,;=-]{0,16}){0,5}",
        query in "[A-Za-z0-9%=&._~+-]{0,40}",
        header in ("[a-z][a-z-]{0,15}", "[ -~]{0,40}"),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    )| {
        let url = format!("{}{path}?{query}", bases[base].trim_end_matches('/'));
        let method = reqwest::Method::from_bytes(methods[method].as_bytes()).unwrap();
        let answer = rt.block_on(
            http.request(method, &url)
                .header(header.0.as_str(), header.1.as_str())
                .body(body)
                .send(),
        );
        match answer {
            Ok(r) => prop_assert!((100..600).contains(&r.status().as_u16())),
            // reqwest refuses some URLs and headers itself, before sending anything.
            Err(e) => prop_assert!(e.is_builder(), "{url}: {e:?}"),
        }
    });
    // Still serving.
    let r = rt
        .block_on(http.get(format!("{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net", emu.imds_base())).header("Metadata", "true").send())
        .unwrap();
    assert_eq!(r.status(), 200);
}
