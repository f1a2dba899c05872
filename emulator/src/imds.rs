//! IMDS: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` with `Metadata: true`.

use http::{Method, Response, StatusCode};
use serde_json::json;

use crate::http::{Body, Req, json};
use crate::state::State;

/// The IMDS (and Arc) token path.
pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

/// An IMDS-style error: `{"error","error_description"}`.
pub fn error(status: StatusCode, error: &str, description: &str) -> Response<Body> {
    json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// The IMDS token answer: every number a string.
pub fn token_answer(
    state: &State,
    resource: &str,
    client_id: &str,
    object_id: &str,
) -> Response<Body> {
    let m = state.tokens.mint(resource, client_id, object_id);
    json(
        StatusCode::OK,
        &json!({
            "access_token": m.token,
            "client_id": client_id,
            "expires_in": m.expires_in.to_string(),
            "expires_on": m.expires_on.to_string(),
            "ext_expires_in": m.expires_in.to_string(),
            "not_before": m.not_before.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}

/// Checks shared by IMDS and Arc: method, path, Metadata header, X-Forwarded-For, api-version, resource.
/// Returns the resource on success.
pub fn common_checks(r: &Req) -> Result<String, Box<Response<Body>>> {
    if r.path.trim_end_matches('/') != TOKEN_PATH {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "The requested path was not found.",
        )));
    }
    if r.method != Method::GET {
        return Err(Box::new(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "The requested method is not allowed.",
        )));
    }
    if r.headers.contains_key("x-forwarded-for") {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "Requests with an X-Forwarded-For header are not allowed.",
        )));
    }
    if !r
        .header("metadata")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        )));
    }
    if r.q("api-version").is_none_or(str::is_empty) {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        )));
    }
    match r.q("resource") {
        Some(res) if !res.is_empty() => Ok(res.to_string()),
        _ => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required audience parameter not specified",
        ))),
    }
}

/// Handle one IMDS request.
pub fn handle(state: &State, r: &Req) -> Response<Body> {
    let resource = match common_checks(r) {
        Ok(res) => res,
        Err(resp) => return *resp,
    };
    let selectors: Vec<(&str, &str)> = ["client_id", "object_id", "msi_res_id", "mi_res_id"]
        .into_iter()
        .filter_map(|k| r.q(k).map(|v| (k, v)))
        .collect();
    let ids = &state.config.identities;
    let found = match selectors.as_slice() {
        [] => Some((ids.system.client_id.clone(), ids.system.object_id.clone())),
        [(k, v)] => ids
            .user_assigned
            .iter()
            .find(|u| match *k {
                "client_id" => u.client_id.eq_ignore_ascii_case(v),
                "object_id" => u.object_id.eq_ignore_ascii_case(v),
                _ => u.resource_id.eq_ignore_ascii_case(v),
            })
            .map(|u| (u.client_id.clone(), u.object_id.clone())),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Multiple identity selectors specified; use only one of client_id, object_id, msi_res_id",
            );
        }
    };
    match found {
        Some((client, object)) => token_answer(state, &resource, &client, &object),
        None => error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        ),
    }
}
