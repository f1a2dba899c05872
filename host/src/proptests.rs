//! Property tests of every parser of outside input (design section 13): names, grants, the
//! config file, and the JSON and `expires_on` forms identity endpoints and Key Vault send.
//! Any input gets a value or a typed error, never a panic.

use crate::backend::keyvault::wire::{Page, SecretBundle, id_parts};
use crate::credential::expiry::{parse_cli_local, parse_epoch, parse_expires_on, parse_token};
use crate::grants::{Grant, Grants, ObjectKind::Secret, WholeVault};
use crate::http::HttpResponse;
use crate::is_valid_name;
use crate::name::{fold, fold_valid};
use proptest::prelude::*;
use std::time::SystemTime;

/// A valid secret name.
const NAME: &str = "[0-9A-Za-z-]{1,40}";

fn response(body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status: reqwest::StatusCode::OK,
        headers: Default::default(),
        body: zeroize::Zeroizing::new(body),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_name_is_valid_exactly_when_it_follows_the_rule(s in any::<String>()) {
        let rule = (1..=127).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        prop_assert_eq!(is_valid_name(&s), rule);
    }

    /// The policy point's one-pass check and fold agrees with the rule and with [`fold`].
    #[test]
    fn fold_valid_is_the_rule_then_fold(
        s in prop_oneof![any::<String>(), "[0-9A-Za-z_ -]{0,130}"],
    ) {
        let expected = is_valid_name(&s).then(|| fold(&s));
        prop_assert_eq!(fold_valid(&s), expected);
    }

    #[test]
    fn names_built_by_the_rule_are_valid(s in "[0-9A-Za-z-]{1,127}") {
        prop_assert!(is_valid_name(&s));
    }

    /// Any text (arbitrary, or made of the grant syntax's own characters) parses to a grant
    /// with a valid name or pattern, or is refused with a message that quotes the whole text.
    #[test]
    fn any_grant_text_parses_or_is_refused_with_the_text_named(
        s in prop_oneof![any::<String>(), "[0-9A-Za-z=/@*:-]{0,24}"],
    ) {
        match s.parse::<Grant>() {
            Ok(g) => prop_assert!(g.pattern || is_valid_name(&g.guest_name)),
            Err(e) => {
                let message = e.to_string();
                let named = format!("invalid grant {s:?}: ");
                prop_assert!(message.starts_with(&named), "{} does not name {:?}", message, s);
            }
        }
    }

    #[test]
    fn a_pattern_grant_never_matches_outside_its_prefix(
        prefix in "[a-zA-Z-]{1,8}",
        name in "[a-zA-Z0-9-]{1,20}",
    ) {
        let grants = Grants::parse([format!("{prefix}*")]).unwrap();
        // Key Vault names are case-insensitive: so is the prefix.
        let inside = name.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase())
            && name.len() > prefix.len();
        match grants.resolve(Secret, &name) {
            Some(t) => {
                prop_assert!(inside);
                prop_assert_eq!(t.object, name.as_str());
            }
            None => prop_assert!(!inside),
        }
    }

    #[test]
    fn an_alias_reaches_its_secret_and_nothing_else(
        alias in NAME,
        secret in NAME,
        other in NAME,
    ) {
        prop_assume!(!other.eq_ignore_ascii_case(&alias));
        let grants = Grants::parse([format!("{alias}={secret}")]).unwrap();
        let t = grants.resolve(Secret, &alias).unwrap();
        prop_assert_eq!(t.object, secret.as_str());
        prop_assert!(grants.resolve(Secret, &other).is_none());
    }

    #[test]
    fn any_spelling_of_a_name_resolves_as_the_name_does(
        name in NAME,
        flips in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let spelled: String = name
            .chars()
            .zip(flips)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        let grants = Grants::parse([
            format!("{name}@0123456789abcdef0123456789abcdef"),
            format!("{}*", &name[..1]),
        ])
        .unwrap();
        let (a, b) = (grants.resolve(Secret, &name).unwrap(), grants.resolve(Secret, &spelled).unwrap());
        prop_assert_eq!((a.vault, a.object, a.version), (b.vault, b.object, b.version));
    }

    #[test]
    fn a_pinned_grant_names_only_its_version(
        name in NAME,
        version in "[0-9a-f]{32}",
    ) {
        let grants = Grants::parse([format!("{name}@{version}")]).unwrap();
        prop_assert_eq!(grants.resolve(Secret, &name).unwrap().version, Some(version.as_str()));
    }

    #[test]
    fn only_an_opt_in_allows_a_whole_vault(vault in "[a-z]{1,10}") {
        let refused = Grants::parse([format!("{vault}/*")]).is_err();
        prop_assert!(refused);
        let all = Grants::parse_with([format!("{vault}/*")], WholeVault::Allow).unwrap();
        prop_assert!(all.has_whole_vault());
    }

    #[test]
    fn any_token_response_is_a_token_or_a_typed_error(body in any::<Vec<u8>>()) {
        let _ = parse_token(&response(body), SystemTime::now());
    }

    #[test]
    fn token_like_json_is_a_token_or_a_typed_error(
        token in "[A-Za-z0-9._-]{0,20}",
        expires in prop_oneof![
            "[0-9]{1,12}".prop_map(|s| s.to_string()),
            any::<String>(),
            r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4} [0-9]{1,2}:[0-9]{2}:[0-9]{2} (AM |PM )?[+-][0-9]{2}:[0-9]{2}"
                .prop_map(|s| s.to_string()),
        ],
        quoted in any::<bool>(),
    ) {
        let value = if quoted { serde_json::json!(expires) } else {
            serde_json::from_str::<serde_json::Value>(&expires).unwrap_or(serde_json::json!(expires))
        };
        let body = serde_json::json!({"access_token": token, "expires_on": value, "expires_in": value});
        let _ = parse_token(&response(body.to_string().into_bytes()), SystemTime::now());
    }

    #[test]
    fn every_expires_on_form_is_a_time_or_nothing(s in any::<String>()) {
        let _ = parse_expires_on(&s);
        let _ = parse_epoch(&s);
        let _ = parse_cli_local(&s);
    }

    #[test]
    fn any_key_vault_answer_is_parsed_or_refused(body in any::<Vec<u8>>()) {
        let r = response(body);
        if let Ok(b) = r.json::<SecretBundle>() {
            let _ = b.meta();
        }
        let _ = r.json::<Page>();
        for code in r.error_codes() {
            prop_assert!(crate::http::is_code(&code) || code.starts_with("AADSTS"));
        }
    }

    #[test]
    fn any_secret_id_splits_or_is_refused(id in any::<String>()) {
        let _ = id_parts(&id);
    }
}
