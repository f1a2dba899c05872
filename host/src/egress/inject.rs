//! Use-only secrets into outgoing requests. A guest asks for one by writing the marker
//! `{{secret:NAME}}` in a header value of its request, in any template (`Bearer
//! {{secret:stripe}}`, a bare marker in `X-Api-Key`), from any language's HTTP client. When
//! the request leaves, after the egress rule and the addresses are checked, each marker is
//! replaced with what the secret's use-only grant says (see [`crate::policy::uses`]), and only
//! if that grant names the request's destination. The guest never holds the value.
//!
//! A request whose markers cannot all be applied is not sent: the guest gets
//! `internal-error` with a message naming the secret and why (never a value).

use super::scrub::{Needles, find_short};
use crate::SecretsCtx;
use crate::policy::uses::Apply;
use crate::policy::{Error as PolicyError, UseRecord, UseValues};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use std::time::Instant;
use wasmtime_wasi_http::{Error, WasiBody};
use zeroize::Zeroizing;

const OPEN: &[u8] = b"{{secret:";
const CLOSE: &[u8] = b"}}";

/// The largest request body the host signs (`hmac-sha256` holds the body to sign it).
pub(super) const MAX_SIGNED_BODY: usize = 16 << 20;

/// One piece of a marked header value: where it is in the value.
#[derive(Clone, Copy)]
enum Piece {
    Text(usize, usize),
    Secret(usize, usize),
}

/// A header value with markers, taken out of the request until they are replaced.
pub(super) struct Marked {
    name: HeaderName,
    value: HeaderValue,
    pieces: Vec<Piece>,
}

impl Marked {
    /// The bytes of `value` a piece covers.
    fn bytes(&self, (start, end): (usize, usize)) -> &[u8] {
        &self.value.as_bytes()[start..end]
    }

    /// The secret names its markers hold (checked valid when the value was split).
    fn names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match *p {
            Piece::Secret(start, end) => std::str::from_utf8(self.bytes((start, end))).ok(),
            Piece::Text(..) => None,
        })
    }
}

/// Takes every header value holding a marker out of `headers` (so that stripping the guest's
/// credentials leaves them be), in order. A malformed marker refuses the request.
pub(super) fn take_markers(headers: &mut http::HeaderMap) -> Result<Vec<Marked>, Error> {
    let mut marked = Vec::new();
    if !headers.values().any(|v| has_marker(v.as_bytes())) {
        return Ok(marked);
    }
    let names: Vec<HeaderName> = headers
        .iter()
        .filter(|(_, v)| has_marker(v.as_bytes()))
        .map(|(n, _)| n.clone())
        .collect();
    for name in names {
        let http::header::Entry::Occupied(entry) = headers.entry(&name) else {
            continue; // already taken: a name with several marked values
        };
        let (name, values) = entry.remove_entry_mult();
        let mut kept = Vec::new();
        for value in values {
            if has_marker(value.as_bytes()) {
                marked.push(Marked {
                    pieces: pieces(value.as_bytes()).map_err(|why| guest_error(&why))?,
                    name: name.clone(),
                    value,
                });
            } else {
                kept.push(value);
            }
        }
        for value in kept {
            headers.append(&name, value);
        }
    }
    Ok(marked)
}

fn has_marker(value: &[u8]) -> bool {
    find_short(value, OPEN).next().is_some()
}

/// Splits a header value into text and the secret names its markers hold.
fn pieces(value: &[u8]) -> Result<Vec<Piece>, String> {
    let mut out = Vec::with_capacity(2);
    let mut from = 0;
    while let Some(at) = find_short(&value[from..], OPEN).next().map(|at| from + at) {
        if at > from {
            out.push(Piece::Text(from, at));
        }
        let start = at + OPEN.len();
        let end = find_short(&value[start..], CLOSE)
            .next()
            .map(|end| start + end)
            .ok_or("a {{secret:NAME}} marker in a header has no closing }}")?;
        std::str::from_utf8(&value[start..end])
            .ok()
            .filter(|n| crate::is_valid_name(n))
            .ok_or("a {{secret:NAME}} marker names no valid secret (1 to 127 characters of 0-9, A-Z, a-z and -)")?;
        out.push(Piece::Secret(start, end));
        from = end + CLOSE.len();
    }
    if from < value.len() {
        out.push(Piece::Text(from, value.len()));
    }
    Ok(out)
}

/// The guest's error for a request the host would not send: the reason, never a value.
fn guest_error(why: &str) -> Error {
    tracing::warn!("egress refused: {why}");
    crate::metrics::global().egress_refused("use-only-secret");
    Error::InternalError(Some(why.to_owned()))
}

/// The secrets one request carries, for their audit lines when it ends.
pub(super) struct Applied {
    uses: Vec<(Box<str>, Apply)>,
    started: Instant,
}

impl Applied {
    /// Writes one audit line per secret the request (`method` to `host`) carried, with the
    /// upstream's `status`; an error if a line cannot be written.
    pub(super) fn record(
        &self,
        secrets: &SecretsCtx,
        host: &str,
        method: &str,
        status: Result<u16, &Error>,
    ) -> Result<(), Error> {
        let outcome = match status {
            Ok(_) => "ok",
            Err(_) => "failed",
        };
        for (name, apply) in &self.uses {
            secrets
                .record_use(&UseRecord {
                    name,
                    apply: Some(*apply),
                    host,
                    method,
                    status: status.ok(),
                    outcome,
                    started: self.started,
                })
                .map_err(|e| guest_error(e.message()))?;
        }
        Ok(())
    }
}

/// One secret a request carries: its values, and what its markers become (`None`: the value
/// itself).
struct Use<'a> {
    name: &'a str,
    values: UseValues,
    text: Option<Zeroizing<Vec<u8>>>,
}

impl Use<'_> {
    fn text(&self) -> &[u8] {
        match &self.text {
            Some(text) => text,
            None => self.values.value.expose().as_bytes(),
        }
    }
}

/// Replaces the markers of `marked` in `request` (to `host` on `port`) with what their
/// grants say, adding every value put in to `needles`. A secret its grant does not allow
/// here, or a vault that cannot give it, refuses the request (one audit line says so).
pub(super) async fn apply(
    secrets: &SecretsCtx,
    policy: &super::EgressPolicy,
    marked: Vec<Marked>,
    request: &mut http::Request<WasiBody>,
    host: &str,
    port: u16,
    needles: &mut Needles,
) -> Result<Applied, Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let mut uses: Vec<Use> = Vec::with_capacity(1);
    for name in marked.iter().flat_map(Marked::names) {
        if uses.iter().any(|u| u.name == name) {
            continue;
        }
        match secrets.use_values(name, host, port).await {
            Ok(values) => uses.push(Use {
                name,
                values,
                text: None,
            }),
            Err(e) => return Err(refused(secrets, name, host, method.as_str(), &e, started)),
        }
    }
    let signed_body = if uses.iter().any(|u| u.values.apply == Apply::HmacSha256) {
        Some(take_body(request).await?)
    } else {
        None
    };
    for u in &mut uses {
        let v = &u.values;
        u.text = if v.apply == Apply::OAuth2 {
            let token = policy
                .oauth
                .token(&crate::fold(u.name), v)
                .await
                .map_err(|e| {
                    let why = format!(
                        "no access token for secret \"{}\" ({}); nothing was sent",
                        u.name,
                        e.detail()
                    );
                    refused_with(
                        secrets,
                        u.name,
                        host,
                        method.as_str(),
                        "unavailable",
                        &why,
                        started,
                    )
                })?;
            Some(Zeroizing::new(token.secret().as_bytes().to_vec()))
        } else {
            replacement(v, signed_body.as_deref())
        };
        needles.add(&policy.forms, v.value.expose().as_bytes());
        if let Some(second) = &v.second {
            needles.add(&policy.forms, second.expose().as_bytes());
        }
        if matches!(v.apply, Apply::Basic | Apply::OAuth2) {
            needles.add(&policy.forms, u.text());
        }
    }
    for m in &marked {
        let text_of = |piece: &Piece| match *piece {
            Piece::Text(start, end) => m.bytes((start, end)),
            Piece::Secret(start, end) => {
                let name = m.bytes((start, end));
                uses.iter()
                    .find(|u| u.name.as_bytes() == name)
                    .expect("every marked name was looked up")
                    .text()
            }
        };
        let len = m.pieces.iter().map(|p| text_of(p).len()).sum();
        let mut value = Zeroizing::new(Vec::with_capacity(len));
        for piece in &m.pieces {
            value.extend_from_slice(text_of(piece));
        }
        let mut value = HeaderValue::from_bytes(&value).map_err(|_| {
            guest_error(&format!(
                "a secret in header {} holds characters a header cannot (a line break?); nothing was sent",
                m.name
            ))
        })?;
        value.set_sensitive(true);
        request.headers_mut().append(m.name.clone(), value);
    }
    if let Some(body) = signed_body {
        *request.body_mut() = Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
    }
    Ok(Applied {
        uses: uses
            .iter()
            .map(|u| (Box::from(u.name), u.values.apply))
            .collect(),
        started,
    })
}

/// The audit line and the guest's error for a secret the request may not carry.
fn refused(
    secrets: &SecretsCtx,
    name: &str,
    host: &str,
    method: &str,
    e: &PolicyError,
    started: Instant,
) -> Error {
    refused_with(
        secrets,
        name,
        host,
        method,
        e.kind().as_str(),
        e.message(),
        started,
    )
}

/// [`refused`], with the outcome and message given.
fn refused_with(
    secrets: &SecretsCtx,
    name: &str,
    host: &str,
    method: &str,
    outcome: &'static str,
    why: &str,
    started: Instant,
) -> Error {
    let _ = secrets.record_use(&UseRecord {
        name,
        apply: None,
        host,
        method,
        status: None,
        outcome,
        started,
    });
    guest_error(why)
}

/// What a marker of the secret `v` becomes, when it is not the value itself.
fn replacement(v: &UseValues, body: Option<&[u8]>) -> Option<Zeroizing<Vec<u8>>> {
    let value = v.value.expose().as_bytes();
    match v.apply {
        Apply::Value => None,
        Apply::Basic => {
            let mut pair = Zeroizing::new(Vec::with_capacity(value.len() + 32));
            pair.extend_from_slice(value);
            pair.push(b':');
            pair.extend_from_slice(v.second.as_ref().map_or(&[][..], |s| s.expose().as_bytes()));
            Some(Zeroizing::new(STANDARD.encode(&*pair).into_bytes()))
        }
        Apply::OAuth2 => unreachable!("an oauth2 marker is filled with an access token"),
        Apply::HmacSha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(value)
                .expect("HMAC takes a key of any length");
            mac.update(body.unwrap_or_default());
            let tag = mac.finalize().into_bytes();
            Some(Zeroizing::new(
                tag.iter().flat_map(|b| hex_pair(*b)).collect(),
            ))
        }
    }
}

fn hex_pair(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]
}

/// The whole request body (to sign it), up to [`MAX_SIGNED_BODY`].
async fn take_body(request: &mut http::Request<WasiBody>) -> Result<Bytes, Error> {
    let body = std::mem::replace(
        request.body_mut(),
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    match Limited::new(body, MAX_SIGNED_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => match e.downcast::<Error>() {
            Ok(e) => Err(*e),
            Err(_) => Err(guest_error(&format!(
                "a request body to sign is larger than {} MiB; nothing was sent",
                MAX_SIGNED_BODY >> 20
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(value: &str) -> Result<Vec<String>, String> {
        Ok(pieces(value.as_bytes())?
            .into_iter()
            .map(|p| match p {
                Piece::Text(start, end) => format!("text:{}", &value[start..end]),
                Piece::Secret(start, end) => format!("secret:{}", &value[start..end]),
            })
            .collect())
    }

    #[test]
    fn markers_split_a_header_value_into_text_and_names() {
        assert_eq!(
            names("Bearer {{secret:stripe}}").unwrap(),
            ["text:Bearer ", "secret:stripe"]
        );
        assert_eq!(
            names("{{secret:a}}:{{secret:b}}").unwrap(),
            ["secret:a", "text::", "secret:b"]
        );
        assert!(names("{{secret:open").unwrap_err().contains("closing"));
        assert!(names("{{secret:}}").unwrap_err().contains("valid"));
        assert!(names("{{secret:a b}}").unwrap_err().contains("valid"));
    }

    #[test]
    fn marked_values_are_taken_out_and_others_stay() {
        let mut h = http::HeaderMap::new();
        h.append("x-api-key", "{{secret:k}}".parse().unwrap());
        h.append("x-api-key", "plain".parse().unwrap());
        h.append("accept", "*/*".parse().unwrap());
        let marked = take_markers(&mut h).unwrap();
        assert_eq!(marked.len(), 1);
        assert_eq!(h.get_all("x-api-key").iter().count(), 1);
        assert_eq!(h["x-api-key"], "plain");
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn hmac_is_rfc_4231_test_case_2() {
        let v = UseValues {
            apply: Apply::HmacSha256,
            value: "Jefe".into(),
            second: None,
            token_endpoint: None,
        };
        let got = replacement(&v, Some(b"what do ya want for nothing?")).unwrap();
        assert_eq!(
            std::str::from_utf8(&got).unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn basic_is_base64_of_user_colon_password() {
        let v = UseValues {
            apply: Apply::Basic,
            value: "Aladdin".into(),
            second: Some("open sesame".into()),
            token_endpoint: None,
        };
        assert_eq!(
            &*replacement(&v, None).unwrap(),
            b"QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
