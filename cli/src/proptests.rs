//! Property tests of the config file: any text is a config or a one-line error.

use crate::config::Config;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_config_text_is_a_config_or_a_one_line_error(s in any::<String>()) {
        if let Err(e) = Config::parse(&s) {
            prop_assert!(!format!("{e:#}").contains('\n'), "{e:#}");
        }
    }

    #[test]
    fn config_like_text_is_a_config_or_a_one_line_error(
        s in r#"(\[(cache|limits|vaults\.[a-z]{1,5}|components\.[a-z]{1,5})\]\n|[a-z-]{1,12} = ("[a-z0-9 ]{0,8}"|[0-9]{1,4}|true)\n){0,8}"#
    ) {
        if let Err(e) = Config::parse(&s) {
            prop_assert!(!format!("{e:#}").contains('\n'), "{e:#}");
        }
    }

    #[test]
    fn an_unknown_key_is_reported_on_its_own_line(blank in 0usize..12, comments in 0usize..4) {
        let mut text = String::new();
        for _ in 0..blank {
            text.push('\n');
        }
        for _ in 0..comments {
            text.push_str("# a comment\n");
        }
        text.push_str("[cache]\nbogus = 1\n");
        let line = blank + comments + 2;
        let e = Config::parse(&text).unwrap_err().to_string();
        prop_assert!(e.ends_with(&format!("(line {line})")), "{e}");
    }
}
