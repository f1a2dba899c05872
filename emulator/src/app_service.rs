//! App Service managed identity: 2019-08-01 (`X-IDENTITY-HEADER`) and legacy 2017-09-01 (`secret`).

use http::{Method, Response, StatusCode};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::config::LegacyDateForm;
use crate::http::{Body, Req, json, uuid};
use crate::state::State;

/// The path of both App Service endpoints.
pub const PATH: &str = "/msi/token";

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(
        status,
        &json!({"statusCode": status.as_u16(), "message": message, "correlationId": uuid()}),
    )
}

/// Format an epoch as the legacy endpoint's date string.
pub fn legacy_date(epoch: u64, form: LegacyDateForm) -> String {
    let t = OffsetDateTime::from_unix_timestamp(epoch as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let formatted = match form {
        LegacyDateForm::TwentyFourHour => {
            t.format(format_description!("[month]/[day]/[year] [hour]:[minute]:[second] +00:00"))
        }
        LegacyDateForm::AmPm => t.format(format_description!(
            "[month padding:none]/[day padding:none]/[year] [hour repr:12 padding:none]:[minute]:[second] [period] +00:00"
        )),
    };
    formatted.unwrap_or_default()
}

/// Handle one App Service request (`legacy` = the 2017-09-01 endpoint).
pub fn handle(state: &State, r: &Req, legacy: bool) -> Response<Body> {
    if r.path.trim_end_matches('/') != PATH {
        return error(StatusCode::NOT_FOUND, "The requested path was not found.");
    }
    if r.method != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The requested method is not allowed.",
        );
    }
    let (header, version) = if legacy {
        ("secret", "2017-09-01")
    } else {
        ("x-identity-header", "2019-08-01")
    };
    match r.header(header) {
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Missing {header} header."),
            );
        }
        Some(h) if h != state.config.identity_header => {
            return error(
                StatusCode::UNAUTHORIZED,
                &format!("Unauthorized: the {header} header is not valid."),
            );
        }
        Some(_) => {}
    }
    if r.q("api-version") != Some(version) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid or missing api-version; expected {version}."),
        );
    }
    let resource = match r.q("resource") {
        Some(res) if !res.is_empty() => res.to_string(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Required parameter 'resource' is missing.",
            );
        }
    };
    let keys: &[&str] = if legacy {
        &["clientid"]
    } else {
        &["client_id", "principal_id", "mi_res_id"]
    };
    let selectors: Vec<(&str, &str)> = keys
        .iter()
        .filter_map(|k| r.q(k).map(|v| (*k, v)))
        .collect();
    let ids = &state.config.identities;
    let found = match selectors.as_slice() {
        [] => Some((ids.system.client_id.clone(), ids.system.object_id.clone())),
        [(k, v)] => ids
            .user_assigned
            .iter()
            .find(|u| match *k {
                "client_id" | "clientid" => u.client_id.eq_ignore_ascii_case(v),
                "principal_id" => u.object_id.eq_ignore_ascii_case(v),
                _ => u.resource_id.eq_ignore_ascii_case(v),
            })
            .map(|u| (u.client_id.clone(), u.object_id.clone())),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Only one of client_id, principal_id or mi_res_id may be given.",
            );
        }
    };
    let Some((client, object)) = found else {
        return error(
            StatusCode::BAD_REQUEST,
            "Unable to load the proper Managed Identity.",
        );
    };
    let m = state.tokens.mint(&resource, &client, &object);
    let body = if legacy {
        json!({
            "access_token": m.token,
            "expires_on": legacy_date(m.expires_on, state.config.legacy_expires_on),
            "resource": resource,
            "token_type": "Bearer",
        })
    } else {
        json!({
            "access_token": m.token,
            "expires_on": m.expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client,
        })
    };
    json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_forms() {
        // 2020-01-16T17:24:12Z
        assert_eq!(
            legacy_date(1579195452, LegacyDateForm::AmPm),
            "1/16/2020 5:24:12 PM +00:00"
        );
        assert_eq!(
            legacy_date(1579195452, LegacyDateForm::TwentyFourHour),
            "01/16/2020 17:24:12 +00:00"
        );
        assert_eq!(
            legacy_date(1505347200, LegacyDateForm::TwentyFourHour),
            "09/14/2017 00:00:00 +00:00"
        );
        assert_eq!(
            legacy_date(1505347200, LegacyDateForm::AmPm),
            "9/14/2017 12:00:00 AM +00:00"
        );
    }
}
