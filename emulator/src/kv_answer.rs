//! Key Vault's answers that every handler shares: its error bodies and its paged listings.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::http::{Body, Req, json};
use crate::state::State;

/// A Key Vault error body `{"error":{"code","message"[,"innererror"]}}`.
pub fn kv_error(
    status: StatusCode,
    code: &str,
    message: &str,
    inner: Option<&str>,
) -> Response<Body> {
    let mut e = json!({"code": code, "message": message});
    if let Some(i) = inner {
        e["innererror"] = json!({"code": i});
    }
    json(status, &json!({"error": e}))
}

/// The RBAC 403 for `Microsoft.KeyVault/vaults/{action}` (e.g. `keys/sign/action`) on `scope`.
pub(crate) fn rbac_forbidden(oid: &str, action: &str, scope: &str) -> Response<Body> {
    kv_error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: oid={oid}\r\nAction: 'Microsoft.KeyVault/vaults/{action}'\r\nResource: '{scope}'\r\nAssignment: (not found)\r\nVault: emulator;location=local\r\n"
        ),
        Some("ForbiddenByRbac"),
    )
}

/// A 400 BadParameter.
pub(crate) fn bad_parameter(message: &str) -> Response<Body> {
    kv_error(StatusCode::BAD_REQUEST, "BadParameter", message, None)
}

/// A 500 InternalError.
pub(crate) fn internal_error(message: &str) -> Response<Body> {
    kv_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        message,
        None,
    )
}

/// One page of a listing: `maxresults` (1..=25), `$skiptoken` = offset (suffix `e`: an empty page first).
pub(crate) fn page(state: &State, r: &Req, items: Vec<Value>, list_url: &str) -> Response<Body> {
    let max = match r.q("maxresults") {
        None => 25,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=25).contains(&n) => n,
            _ => {
                return bad_parameter("Invalid value for maxresults: it must be between 1 and 25.");
            }
        },
    };
    let api = r.q("api-version").unwrap_or("7.5");
    let token = r.q("$skiptoken").unwrap_or("");
    let (empty_now, offset) = match token.strip_suffix('e') {
        Some(o) => (true, o),
        None => (false, token),
    };
    let offset = if offset.is_empty() {
        0
    } else {
        match offset.parse::<usize>() {
            Ok(o) => o,
            Err(_) => return bad_parameter("Invalid $skiptoken."),
        }
    };
    let link =
        |tok: String| format!("{list_url}?api-version={api}&$skiptoken={tok}&maxresults={max}");
    if empty_now {
        return json(
            StatusCode::OK,
            &json!({"value": [], "nextLink": link(offset.to_string())}),
        );
    }
    let end = (offset + max).min(items.len());
    let value: Vec<Value> = items
        .get(offset..end)
        .map(|s| s.to_vec())
        .unwrap_or_default();
    let next = if end < items.len() {
        // Insert the empty page after the first page, as Azure sometimes does.
        let tok = if state.config.empty_page && offset == 0 {
            format!("{end}e")
        } else {
            end.to_string()
        };
        Value::String(link(tok))
    } else {
        Value::Null
    };
    json(StatusCode::OK, &json!({"value": value, "nextLink": next}))
}
