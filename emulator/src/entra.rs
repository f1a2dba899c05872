//! Entra ID v2 token endpoint (`POST /{tenant}/oauth2/v2.0/token`), OIDC discovery and instance discovery.

use http::{Method, Response, StatusCode};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::http::{Body, Req, json, uuid};
use crate::state::State;

/// The client-assertion type of workload identity.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An Entra error in Entra's shape.
pub fn error(status: StatusCode, error: &str, code: u32, text: &str) -> Response<Body> {
    let ts = OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    let (trace, corr) = (uuid(), uuid());
    json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": "https://login.microsoftonline.com/error?code=".to_string() + &code.to_string(),
        }),
    )
}

/// Handle one Entra request.
pub fn handle(state: &State, r: &Req) -> Response<Body> {
    let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let tenant = state.config.tenant_id.as_str();
    match (&r.method, segs.as_slice()) {
        (&Method::GET, ["common", "discovery", "instance"]) => instance_discovery(state, r),
        (&Method::GET, [t, "v2.0", ".well-known", "openid-configuration"]) => {
            if !tenant_ok(t, tenant) {
                return tenant_not_found(t);
            }
            let b = format!("{}/{tenant}", r.base);
            json(
                StatusCode::OK,
                &json!({
                    "token_endpoint": format!("{b}/oauth2/v2.0/token"),
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                    "jwks_uri": format!("{}/{tenant}/discovery/v2.0/keys", r.base),
                    "response_modes_supported": ["query", "fragment", "form_post"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "issuer": format!("{b}/v2.0"),
                    "request_uri_parameter_supported": false,
                    "userinfo_endpoint": format!("{}/oidc/userinfo", r.base),
                    "authorization_endpoint": format!("{b}/oauth2/v2.0/authorize"),
                    "device_authorization_endpoint": format!("{b}/oauth2/v2.0/devicecode"),
                    "http_logout_supported": true,
                    "frontchannel_logout_supported": true,
                    "end_session_endpoint": format!("{b}/oauth2/v2.0/logout"),
                    "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
                    "tenant_region_scope": "NA",
                    "cloud_instance_name": "microsoftonline.com",
                }),
            )
        }
        (&Method::POST, [t, "oauth2", "v2.0", "token"]) => {
            if !tenant_ok(t, tenant) {
                return tenant_not_found(t);
            }
            token(state, r)
        }
        (_, [_, "oauth2", "v2.0", "token"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            900023,
            "The requested path was not found.",
        ),
    }
}

fn tenant_ok(t: &str, tenant: &str) -> bool {
    t.eq_ignore_ascii_case(tenant)
}

fn tenant_not_found(t: &str) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        &format!(
            "Tenant '{t}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

fn instance_discovery(state: &State, r: &Req) -> Response<Body> {
    let host = r
        .base
        .split("://")
        .nth(1)
        .unwrap_or("127.0.0.1")
        .to_string();
    json(
        StatusCode::OK,
        &json!({
            "tenant_discovery_endpoint": format!("{}/{}/v2.0/.well-known/openid-configuration", r.base, state.config.tenant_id),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }),
    )
}

fn token(state: &State, r: &Req) -> Response<Body> {
    let ct_ok = r.header("content-type").is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if !ct_ok {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let missing = |p: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{p}'."),
        )
    };
    let Some(grant) = get("grant_type") else {
        return missing("grant_type");
    };
    if grant != "client_credentials" {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = get("client_id") else {
        return missing("client_id");
    };
    let Some(scope) = get("scope") else {
        return missing("scope");
    };
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let resource = match scopes.as_slice() {
        [one] if one.ends_with("/.default") && one.len() > "/.default".len() => {
            one.trim_end_matches("/.default")
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1002012,
                &format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            );
        }
    };
    let ids = &state.config.identities;
    let object_id = if let Some(assertion) = get("client_assertion") {
        if get("client_assertion_type") != Some(JWT_BEARER) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "Invalid client_assertion_type; expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        let Some(f) = ids
            .federated
            .iter()
            .find(|f| f.client_id.eq_ignore_ascii_case(client_id))
        else {
            return app_not_found(state, client_id);
        };
        if f.assertion != assertion {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                70021,
                "No matching federated identity record found for presented assertion.",
            );
        }
        f.object_id.clone()
    } else if let Some(secret) = get("client_secret") {
        let Some(sp) = ids
            .service_principals
            .iter()
            .find(|s| s.client_id.eq_ignore_ascii_case(client_id))
        else {
            return app_not_found(state, client_id);
        };
        if sp.client_secret != secret {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
        sp.object_id.clone()
    } else {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    };
    let m = state.tokens.mint(resource, client_id, &object_id);
    json(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": m.expires_in, "ext_expires_in": m.expires_in, "access_token": m.token}),
    )
}

fn app_not_found(state: &State, client_id: &str) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
        &format!(
            "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
            state.config.tenant_id
        ),
    )
}
