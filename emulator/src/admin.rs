//! The admin endpoint (plain HTTP on loopback): counters, faults, token lifetime, vault latency.
//!
//! - `GET /health` → `{"status":"ok"}`
//! - `GET /counters` → `{"imds":N,…,"keyvault":N,"vaults":{"main":N}}`; `POST /counters/reset` → 204
//! - `PUT /faults/{endpoint}` with a JSON array of faults, e.g. `[{"kind":"status","status":503,"retry-after":1},
//!   {"kind":"delay","ms":100},{"kind":"malformed"},{"kind":"oversized","bytes":100000},{"kind":"drop"},
//!   {"kind":"reset"},{"kind":"stall"}]` → 204
//! - `PUT /faults/{endpoint}/standing` with one fault, or `null` to clear it: applied to every
//!   request once the sequence is used up → 204
//! - `PUT /token-lifetime` with `{"secs":N}` → 204
//! - `PUT /vaults/{vault}/latency` with `{"ms":N}` → 204
//! - `PUT /throttle` with `{"enabled":true,"max-requests":N,"window-ms":N,"retry-after-secs":N|null}` → 204

use std::time::Duration;

use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::config::ThrottleConfig;
use crate::faults::{Endpoint, Fault, FaultSpec};
use crate::http::{Body, Req, json, raw};
use crate::state::State;

fn bad(msg: &str) -> Response<Body> {
    json(StatusCode::BAD_REQUEST, &json!({"error": msg}))
}

fn done() -> Response<Body> {
    raw(StatusCode::NO_CONTENT, "text/plain", Vec::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Secs {
    secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ms {
    ms: u64,
}

/// The counters as JSON.
pub fn counters(state: &State) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for e in Endpoint::ALL {
        o.insert(e.name().to_string(), json!(state.faults.count(e)));
    }
    o.insert("vaults".into(), json!(state.faults.vault_counts()));
    serde_json::Value::Object(o)
}

/// Handle one admin request.
pub fn handle(state: &State, r: &Req) -> Response<Body> {
    let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    match (&r.method, segs.as_slice()) {
        (&Method::GET, ["health"]) => json(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, ["counters"]) => json(StatusCode::OK, &counters(state)),
        (&Method::POST, ["counters", "reset"]) => {
            state.faults.reset();
            done()
        }
        (&Method::PUT, ["faults", e]) => {
            let Ok(endpoint) = e.parse::<Endpoint>() else {
                return bad(&format!("unknown endpoint {e:?}"));
            };
            match serde_json::from_slice::<Vec<FaultSpec>>(&r.body) {
                Ok(specs) => {
                    state
                        .faults
                        .set(endpoint, specs.into_iter().map(Fault::from).collect());
                    done()
                }
                Err(err) => bad(&format!("invalid fault list: {err}")),
            }
        }
        (&Method::PUT, ["faults", e, "standing"]) => {
            let Ok(endpoint) = e.parse::<Endpoint>() else {
                return bad(&format!("unknown endpoint {e:?}"));
            };
            match serde_json::from_slice::<Option<FaultSpec>>(&r.body) {
                Ok(spec) => {
                    state.faults.set_standing(endpoint, spec.map(Fault::from));
                    done()
                }
                Err(err) => bad(&format!("invalid fault: {err}")),
            }
        }
        (&Method::PUT, ["token-lifetime"]) => match serde_json::from_slice::<Secs>(&r.body) {
            Ok(s) => {
                state.tokens.set_lifetime(s.secs);
                done()
            }
            Err(err) => bad(&format!("invalid body: {err}")),
        },
        (&Method::PUT, ["vaults", v, "latency"]) => {
            let Some(vault) = state.vaults.get(*v) else {
                return bad(&format!("unknown vault {v:?}"));
            };
            match serde_json::from_slice::<Ms>(&r.body) {
                Ok(m) => {
                    if let Ok(mut l) = vault.latency.lock() {
                        *l = Duration::from_millis(m.ms);
                    }
                    done()
                }
                Err(err) => bad(&format!("invalid body: {err}")),
            }
        }
        (&Method::PUT, ["throttle"]) => match serde_json::from_slice::<ThrottleConfig>(&r.body) {
            Ok(t) if t.window_ms > 0 => {
                if let Ok(mut cur) = state.throttle.lock() {
                    *cur = t;
                }
                done()
            }
            Ok(_) => bad("window-ms must be at least 1"),
            Err(err) => bad(&format!("invalid body: {err}")),
        },
        _ => json(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    }
}
