//! Property tests of the parsers that read untrusted text: the secret format,
//! expiry input, the `--scopes-file` catalogue and the client config file.
//! The same functions are fuzzed by the targets in `fuzz/`; these run in the
//! normal suite on stable.

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use keydeck::config::{ConfigFile, Profile};
use keydeck::key::{parse_expiry, Catalog, ExpiryError, Secret, SecretFormat, SecretParseError};
use proptest::prelude::*;

const CASES: u32 = 256;

/// Arbitrary bytes as a (lossy) UTF-8 string, as a fuzzer would feed them.
fn lossy() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..256)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Strings near the expiry grammar: digits, units, dashes, spaces, multi-byte characters.
fn expiry_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,12}[hdwyHDWYé€0-9x ]?",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        "[0-9é-]{0,12}",
        "\\PC{0,16}",
        lossy(),
    ]
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn key_prefix() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,15}".prop_map(|p| format!("{p}_"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn secret_parse_never_panics(input in lossy(), prefix in key_prefix()) {
        let format = SecretFormat::new(&prefix).unwrap();
        let _ = format.parse(&input);
        let _ = SecretFormat::default().parse(&input);
        let _ = SecretFormat::user_token().parse(&input);
    }

    #[test]
    fn a_generated_secret_parses_and_any_changed_char_is_refused(
        prefix in key_prefix(),
        at in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let format = SecretFormat::new(&prefix).unwrap();
        let secret = format.generate();
        let parsed = format.parse(secret.expose()).expect("a generated secret parses");
        prop_assert_eq!(parsed.digest(), secret.digest());

        let chars: Vec<char> = secret.expose().chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != replacement);
        let mut changed = chars.clone();
        changed[i] = replacement;
        let changed: String = changed.into_iter().collect();
        prop_assert!(format.parse(&changed).is_err(), "{} accepted", i);
    }

    #[test]
    fn a_near_miss_checksum_is_refused_as_a_bad_checksum(
        at in 0usize..6,
        replacement in "[0-9A-Za-z]",
    ) {
        let format = SecretFormat::default();
        let secret = format.generate();
        let s = secret.expose();
        let i = s.len() - 6 + at;
        prop_assume!(&s[i..=i] != replacement.as_str());
        let changed = format!("{}{}{}", &s[..i], replacement, &s[i + 1..]);
        prop_assert_eq!(format.parse(&changed).err(), Some(SecretParseError::BadChecksum));
    }

    #[test]
    fn secret_format_new_never_panics(prefix in lossy()) {
        if let Ok(format) = SecretFormat::new(&prefix) {
            let s = format.generate();
            prop_assert!(format.parse(s.expose()).is_ok());
            prop_assert_eq!(format.display_prefix(&s).len(), prefix.len() + 4);
        }
    }

    #[test]
    fn expiry_parse_never_panics(input in expiry_like(), offset_min in -14i32 * 60..=14 * 60) {
        let tz = FixedOffset::east_opt(offset_min * 60).unwrap();
        let _ = parse_expiry(&input, now(), &Utc);
        let _ = parse_expiry(&input, now(), &tz);
        // The far ends of time, where date arithmetic overflows.
        let _ = parse_expiry(&input, DateTime::<Utc>::MAX_UTC, &tz);
        let _ = parse_expiry(&input, DateTime::<Utc>::MIN_UTC, &tz);
    }

    #[test]
    fn an_accepted_expiry_is_in_the_future_and_at_most_ten_years_ahead(input in expiry_like()) {
        if let Ok(Some(at)) = parse_expiry(&input, now(), &Utc) {
            prop_assert!(at > now());
            prop_assert!(at <= now() + Duration::days(366 * 10 + 2));
        }
    }

    #[test]
    fn day_spans_round_trip(days in 1u32..3650) {
        prop_assert_eq!(
            parse_expiry(&format!("{days}d"), now(), &Utc),
            Ok(Some(now() + Duration::days(i64::from(days))))
        );
    }

    #[test]
    fn dates_round_trip_to_the_start_of_the_next_local_day(
        days_ahead in 0i64..3000,
        offset_min in -14i32 * 60..=14 * 60,
    ) {
        let tz = FixedOffset::east_opt(offset_min * 60).unwrap();
        let date = (now() + Duration::days(days_ahead)).with_timezone(&tz).date_naive();
        let at = parse_expiry(&date.format("%Y-%m-%d").to_string(), now(), &tz)
            .expect("a near future date is accepted")
            .expect("a date is an expiry");
        let expected = tz
            .from_local_datetime(&date.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc);
        prop_assert_eq!(at, expected);
    }

    #[test]
    fn past_dates_are_refused(days_back in 2i64..100_000) {
        let Some(past) = now().checked_sub_signed(Duration::days(days_back)) else {
            return Ok(());
        };
        prop_assert_eq!(
            parse_expiry(&past.format("%Y-%m-%d").to_string(), now(), &Utc),
            Err(ExpiryError::InPast)
        );
    }

    #[test]
    fn scopes_file_parse_never_panics(text in lossy()) {
        let _ = Catalog::from_toml(&text);
    }

    #[test]
    fn a_generated_scopes_file_parses_with_full_access_last(
        scopes in prop::collection::vec(("[a-z0-9_:.-]{1,64}", "\\PC{1,64}", "\\PC{0,100}"), 0..20),
    ) {
        let mut text = String::new();
        for (id, label, description) in &scopes {
            text.push_str(&format!(
                "[[scope]]\nid = {}\nlabel = {}\ndescription = {}\n",
                toml_str(id), toml_str(label), toml_str(description)
            ));
        }
        if text.is_empty() {
            text.push_str("scope = []\n");
        }
        let mut ids: Vec<&str> = scopes.iter().map(|(id, _, _)| id.as_str()).collect();
        let unique = {
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            sorted.len() == ids.len()
        };
        match Catalog::from_toml(&text) {
            Ok(catalog) => {
                prop_assert!(unique, "duplicate ids accepted: {:?}", ids);
                let got: Vec<&str> = catalog.scopes().iter().map(|s| s.id.as_str()).collect();
                prop_assert_eq!(got.last().copied(), Some("full_access"));
                ids.retain(|id| *id != "full_access");
                prop_assert_eq!(&got[..got.len() - 1], &ids[..]);
            }
            Err(message) => {
                // The only reasons left for these well-formed files: a duplicate
                // id, or a label with a control character (\PC excludes those,
                // so only duplicates).
                prop_assert!(!unique, "refused a valid file: {}\n{}", message, text);
            }
        }
    }

    #[test]
    fn config_file_parse_never_panics(text in lossy()) {
        if let Ok(file) = ConfigFile::parse(&text) {
            let _ = file.profile_name(None);
        }
    }

    #[test]
    fn a_saved_config_file_reads_back_the_same(
        default_profile in proptest::option::of("\\PC{0,20}"),
        profiles in prop::collection::btree_map(
            "\\PC{0,20}",
            (
                proptest::option::of("\\PC{0,40}"),
                proptest::option::of("\\PC{0,40}"),
                proptest::option::of("\\PC{0,40}"),
            ),
            0..5,
        ),
    ) {
        let file = ConfigFile {
            default_profile,
            profiles: profiles
                .into_iter()
                .map(|(name, (url, token, token_command))| {
                    (name, Profile { url, token: token.map(Secret::new), token_command })
                })
                .collect(),
            theme: None,
        };
        let text = toml_text(&file);
        let back = ConfigFile::parse(&text).expect("a saved file parses");
        prop_assert_eq!(toml_text(&back), text);
        prop_assert_eq!(back.profiles.len(), file.profiles.len());
        for (name, p) in &file.profiles {
            let q = &back.profiles[name];
            prop_assert_eq!(&q.url, &p.url);
            prop_assert_eq!(&q.token, &p.token);
            prop_assert_eq!(&q.token_command, &p.token_command);
        }
    }
}

/// A TOML basic string (JSON escaping is valid TOML for printable text).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// What `ConfigFile::save` writes, without the file.
fn toml_text(file: &ConfigFile) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    file.save(&path).unwrap();
    std::fs::read_to_string(&path).unwrap()
}
