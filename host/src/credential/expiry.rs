//! Token responses and the many spellings of an expiry time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

use super::{AccessToken, CredentialError};
use crate::http::{HttpResponse, json_error};

/// A JSON number, or a number in a string (IMDS sends every number as a string).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Int(u64),
    Float(f64),
    Text(String),
}

impl NumOrText {
    fn text(&self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

/// The fields every token endpoint shares. Unknown fields are ignored.
#[derive(Deserialize)]
struct RawToken {
    access_token: String,
    #[serde(default)]
    expires_on: Option<NumOrText>,
    #[serde(default)]
    expires_in: Option<NumOrText>,
}

/// Parses a token response body: `access_token` plus `expires_on` (preferred) or `expires_in`.
pub(crate) fn parse_token(
    resp: &HttpResponse,
    now: SystemTime,
) -> Result<AccessToken, CredentialError> {
    let raw: RawToken = serde_json::from_slice(&resp.body).map_err(|e| {
        CredentialError::Unavailable(format!("malformed token response: {}", json_error(&e)))
    })?;
    // Move the token into zeroizing memory before anything can fail.
    let token = AccessToken::new(raw.access_token, UNIX_EPOCH);
    if token.secret().is_empty() {
        return Err(CredentialError::Unavailable(
            "token response has an empty access_token".into(),
        ));
    }
    let expiry = raw
        .expires_on
        .and_then(|v| parse_expires_on(&v.text()))
        .or_else(|| Some(now + parse_seconds(&raw.expires_in?.text())?))
        .ok_or_else(|| {
            CredentialError::Unavailable(
                "token response has no readable expires_on or expires_in".into(),
            )
        })?;
    Ok(token.with_expiry(expiry))
}

/// A count of seconds such as `3599`, `"3599"` or `"3599.0"`.
fn parse_seconds(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let f: f64 = s.parse().ok()?;
    (0.0..1e12).contains(&f).then(|| Duration::from_secs_f64(f))
}

/// Unix seconds, as a number or a string (`1506484173`, `"1506484173"`, `"1506484173.5"`).
pub fn parse_epoch(s: &str) -> Option<SystemTime> {
    Some(UNIX_EPOCH + parse_seconds(s)?)
}

/// Any `expires_on` Azure sends: Unix seconds, or a date such as `"09/14/2017 00:00:00 +00:00"`
/// or `"1/16/2020 5:24:12 AM +00:00"` (legacy App Service, month first).
pub fn parse_expires_on(s: &str) -> Option<SystemTime> {
    parse_epoch(s).or_else(|| parse_us_date(s))
}

/// `M/D/YYYY H:MM:SS [AM|PM] +HH:MM`.
fn parse_us_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (date, clock, meridiem, offset) = match parts.as_slice() {
        [d, t, o] => (*d, *t, None, *o),
        [d, t, m, o] => (*d, *t, Some(*m), *o),
        _ => return None,
    };
    let mut d = date.split('/').map(|p| p.parse::<u16>().ok());
    let (month, day, year) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() {
        return None;
    }
    let mut t = clock.split(':').map(|p| p.parse::<u8>().ok());
    let (mut hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if t.next().is_some() {
        return None;
    }
    match meridiem.map(str::to_ascii_uppercase).as_deref() {
        None => {}
        Some("AM") if (1..=12).contains(&hour) => hour %= 12,
        Some("PM") if (1..=12).contains(&hour) => hour = hour % 12 + 12,
        Some(_) => return None,
    }
    let date = Date::from_calendar_date(
        i32::from(year),
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    let at = PrimitiveDateTime::new(date, time).assume_offset(parse_offset(offset)?);
    Some(at.into())
}

/// `+HH:MM`, `-HH:MM` or `+HHMM`.
fn parse_offset(s: &str) -> Option<UtcOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i8, &s[1..]),
        b'-' => (-1i8, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i8 = digits[..2].parse().ok()?;
    let m: i8 = digits[2..].parse().ok()?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// The Azure CLI's `expiresOn`, `"2023-10-31 21:59:10.000000"`, read as UTC (the CLI runs with
/// `TZ=UTC`, so its local time is UTC).
pub(crate) fn parse_cli_local(s: &str) -> Option<SystemTime> {
    let (date, clock) = s.trim().split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<u16>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let clock = clock.split('.').next()?;
    let mut t = clock.split(':').map(|p| p.parse::<u8>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    let date = Date::from_calendar_date(
        i32::from(year),
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn epoch_strings_and_numbers() {
        assert_eq!(secs(parse_expires_on("1506484173").unwrap()), 1506484173);
        assert_eq!(secs(parse_expires_on(" 1506484173 ").unwrap()), 1506484173);
        assert_eq!(secs(parse_expires_on("1506484173.0").unwrap()), 1506484173);
        assert!(parse_expires_on("-5").is_none());
        assert!(parse_expires_on("soon").is_none());
    }

    #[test]
    fn legacy_app_service_dates() {
        // 2017-09-14T00:00:00Z
        assert_eq!(
            secs(parse_expires_on("09/14/2017 00:00:00 +00:00").unwrap()),
            1505347200
        );
        // 2020-01-16T05:24:12Z
        assert_eq!(
            secs(parse_expires_on("1/16/2020 5:24:12 AM +00:00").unwrap()),
            1579152252
        );
        assert_eq!(
            secs(parse_expires_on("1/16/2020 5:24:12 PM +00:00").unwrap()),
            1579195452
        );
        assert_eq!(
            secs(parse_expires_on("1/16/2020 12:00:00 AM +00:00").unwrap()),
            1579132800
        );
        assert_eq!(
            secs(parse_expires_on("1/16/2020 12:00:00 PM +00:00").unwrap()),
            1579176000
        );
        // An offset moves the instant: 05:24:12 at +01:00 is 04:24:12Z.
        assert_eq!(
            secs(parse_expires_on("1/16/2020 5:24:12 AM +01:00").unwrap()),
            1579148652
        );
        assert_eq!(
            secs(parse_expires_on("1/16/2020 5:24:12 AM -0130").unwrap()),
            1579157652
        );
        for bad in [
            "13/01/2020 00:00:00 +00:00",
            "1/16/2020 13:00:00 PM +00:00",
            "1/16/2020 5:24:12 XM +00:00",
            "1/16/2020 5:24:12",
            "1/16/2020 5:24 +00:00",
            "2020-01-16 05:24:12 +00:00",
        ] {
            assert!(parse_expires_on(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cli_local_time() {
        assert_eq!(
            secs(parse_cli_local("2023-10-31 21:59:10.000000").unwrap()),
            1698789550
        );
        assert_eq!(
            secs(parse_cli_local("2023-10-31 21:59:10").unwrap()),
            1698789550
        );
        assert!(parse_cli_local("yesterday").is_none());
    }

    fn resp(body: &str) -> HttpResponse {
        HttpResponse {
            status: reqwest::StatusCode::OK,
            headers: Default::default(),
            body: zeroize::Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn token_responses_in_every_shape() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let imds = r#"{"access_token":"t","expires_in":"3599","expires_on":"1506484173","not_before":"1506480273","resource":"https://vault.azure.net","token_type":"Bearer"}"#;
        assert_eq!(
            secs(parse_token(&resp(imds), now).unwrap().expires_on()),
            1506484173
        );
        let aad =
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"t"}"#;
        assert_eq!(
            secs(parse_token(&resp(aad), now).unwrap().expires_on()),
            4599
        );
        let legacy = r#"{"access_token":"t","expires_on":"09/14/2017 00:00:00 +00:00"}"#;
        assert_eq!(
            secs(parse_token(&resp(legacy), now).unwrap().expires_on()),
            1505347200
        );
        let num = r#"{"access_token":"t","expires_on":1506484173}"#;
        assert_eq!(
            secs(parse_token(&resp(num), now).unwrap().expires_on()),
            1506484173
        );
    }

    #[test]
    fn bad_token_responses_do_not_echo_the_body() {
        let now = SystemTime::now();
        for body in [
            r#"{"access_token":"canary-abc"}"#,
            r#"{"access_token":"canary-abc","expires_on":"canary-abc"}"#,
            r#"{"access_token":123,"expires_in":"canary-abc"}"#,
            r#"{"token":"canary-abc"}"#,
            r#"{"access_token":"canary-abc""#,
            r#"{"access_token":"","expires_in":5}"#,
        ] {
            let err = parse_token(&resp(body), now).unwrap_err();
            assert!(matches!(err, CredentialError::Unavailable(_)), "{err}");
            assert!(!err.to_string().contains("canary"), "{err}");
        }
    }
}
