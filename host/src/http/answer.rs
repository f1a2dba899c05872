//! What an Azure error answer may tell the host, read one way for every caller: how long it
//! asks us to wait (`Retry-After`), and its error codes, kept only when they look like codes
//! (an error body is the server's text and may quote anything, a secret included).

use super::HttpResponse;
use std::time::Duration;

impl HttpResponse {
    /// The `Retry-After` header in seconds (the only form Azure sends), if present.
    pub fn retry_after(&self) -> Option<Duration> {
        let secs: u64 = self.header("retry-after")?.trim().parse().ok()?;
        Some(Duration::from_secs(secs))
    }

    /// The error codes of an Azure or Entra error body, outermost first, each kept only if
    /// [`is_code`]: `error` when it is a string (Entra), else `error.code` and
    /// `error.innererror.code` (Key Vault, IMDS), then `AADSTSnnnn` from `error_description`.
    /// Empty when the body is not such JSON. Never any other text of the body.
    pub fn error_codes(&self) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default)]
            error: Option<serde_json::Value>,
            #[serde(default)]
            error_description: Option<String>,
        }
        let Ok(body) = serde_json::from_slice::<Body>(&self.body) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        let mut keep = |code: Option<&str>| {
            if let Some(code) = code.filter(|c| is_code(c)) {
                out.push(code.to_owned());
            }
        };
        match &body.error {
            Some(serde_json::Value::String(s)) => keep(Some(s)),
            Some(serde_json::Value::Object(o)) => {
                keep(o.get("code").and_then(|c| c.as_str()));
                keep(
                    o.get("innererror")
                        .and_then(|i| i.get("code"))
                        .and_then(|c| c.as_str()),
                );
            }
            _ => {}
        }
        if let Some(desc) = &body.error_description
            && let Some(i) = desc.find("AADSTS")
        {
            let digits: String = desc[i + 6..]
                .chars()
                .take_while(char::is_ascii_digit)
                .take(10)
                .collect();
            if !digits.is_empty() {
                out.push(format!("AADSTS{digits}"));
            }
        }
        out
    }
}

/// A short identifier like `invalid_request` or `ForbiddenByRbac`: 1 to 64 ASCII letters,
/// digits and `_`.
pub fn is_code(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn answer(body: &str, retry_after: Option<&str>) -> HttpResponse {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert("retry-after", v.parse().unwrap());
        }
        HttpResponse {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: zeroize::Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn codes_of_key_vault_imds_and_entra_bodies() {
        let kv = r#"{"error":{"code":"Forbidden","message":"x","innererror":{"code":"ForbiddenByRbac"}}}"#;
        assert_eq!(
            answer(kv, None).error_codes(),
            ["Forbidden", "ForbiddenByRbac"]
        );
        let entra = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret hunter2"}"#;
        assert_eq!(
            answer(entra, None).error_codes(),
            ["invalid_client", "AADSTS7000215"]
        );
    }

    #[test]
    fn text_that_is_not_a_code_is_dropped() {
        let body = r#"{"error":{"code":"has spaces and secrets","innererror":{"code":"s3cr3t!"}}}"#;
        assert!(answer(body, None).error_codes().is_empty());
        assert!(answer("not json s3cret", None).error_codes().is_empty());
        assert!(!is_code(&"a".repeat(65)));
        assert!(!is_code(""));
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(
            answer("", Some(" 7 ")).retry_after(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            answer("", Some("Wed, 21 Oct 2026 07:28:00 GMT")).retry_after(),
            None
        );
        assert_eq!(answer("", None).retry_after(), None);
    }
}
