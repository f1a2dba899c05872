//! `spin-hello`: an HTTP component written for Spin 4 with spin-sdk 7, as a Spin user would
//! write it, with no knowledge of wasm-secrets. `GET /NAME` reads the variable `NAME`
//! (`/`: `db_password`) and answers 200 and `hello: read variable 'NAME' (N characters)`,
//! never the value; or the variable error's kind and message, with 400 (`invalid-name`), 404
//! (`undefined`), 502 (`provider`) or 500 (`other`).
//!
//! Under Spin the variable comes from the application manifest; under `wasm-secrets serve` it
//! is a secret this component was granted (`db_password` reads `db-password`).

use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::variables::{self, Error};

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    let path = request.uri().path();
    let name = match path.trim_start_matches('/').split('/').next() {
        None | Some("") => "db_password",
        Some(name) => name,
    }
    .to_owned();
    match variables::get(&name).await {
        Ok(value) => (
            StatusCode::OK,
            format!(
                "hello: read variable '{name}' ({} characters)\n",
                value.chars().count()
            ),
        ),
        Err(e) => {
            let (status, kind, message) = match e {
                Error::InvalidName(m) => (StatusCode::BAD_REQUEST, "invalid-name", m),
                Error::Undefined(m) => (StatusCode::NOT_FOUND, "undefined", m),
                Error::Provider(m) => (StatusCode::BAD_GATEWAY, "provider", m),
                Error::Other(m) => (StatusCode::INTERNAL_SERVER_ERROR, "other", m),
            };
            (status, format!("{kind}: {message}\n"))
        }
    }
}
