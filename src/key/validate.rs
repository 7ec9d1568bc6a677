//! Limits on what a client may send for a key, shared by the service and its clients,
//! and the characters that may hide or reorder what an admin reads in a listing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::{expiry, scope};

/// Field name → message, for every field that failed.
pub type FieldErrors = BTreeMap<String, String>;

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;

/// `None` if the name is acceptable, otherwise why not.
pub fn name_error(name: &str) -> Option<String> {
    let len = name.chars().count();
    if name.trim().is_empty() {
        Some("name is required".to_owned())
    } else if len > NAME_MAX {
        Some(format!(
            "name must be at most {NAME_MAX} characters (it has {len})"
        ))
    } else {
        hidden_error("name", name, &[])
    }
}

/// `None` if the description is acceptable, otherwise why not. Newlines and
/// tabs are allowed.
pub fn description_error(description: &str) -> Option<String> {
    let len = description.chars().count();
    if len > DESCRIPTION_MAX {
        Some(format!(
            "description must be at most {DESCRIPTION_MAX} characters (it has {len})"
        ))
    } else {
        hidden_error("description", description, &['\n', '\t'])
    }
}

/// A kind of character that a terminal or a reader does not show as itself:
/// it may drive the terminal, reorder the text around it, or be invisible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    /// C0 and C1 controls and DEL (general category Cc).
    Control,
    /// Bidirectional embeddings, overrides, isolates and marks.
    Bidi,
    /// Every other format character (general category Cf): zero-width
    /// characters, the byte order mark, the soft hyphen…
    Format,
    /// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR.
    Separator,
}

impl Hidden {
    /// What such a character is, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Control => "a control character",
            Self::Bidi => "a bidirectional formatting character",
            Self::Format => "an invisible format character",
            Self::Separator => "a line or paragraph separator",
        }
    }
}

/// Whether `c` is hidden, and how: categories Cc, Cf, Zl and Zp.
pub fn hidden_kind(c: char) -> Option<Hidden> {
    match c.general_category() {
        GeneralCategory::Control => Some(Hidden::Control),
        GeneralCategory::Format if is_bidi(c) => Some(Hidden::Bidi),
        GeneralCategory::Format => Some(Hidden::Format),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some(Hidden::Separator)
        }
        _ => None,
    }
}

fn is_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// The Unicode names of the hidden characters people meet most.
const NAMES: &[(char, &str)] = &[
    ('\u{0000}', "NULL"),
    ('\u{0007}', "BELL"),
    ('\u{0008}', "BACKSPACE"),
    ('\u{0009}', "CHARACTER TABULATION"),
    ('\u{000A}', "LINE FEED"),
    ('\u{000D}', "CARRIAGE RETURN"),
    ('\u{001B}', "ESCAPE"),
    ('\u{007F}', "DELETE"),
    ('\u{0085}', "NEXT LINE"),
    ('\u{009B}', "CONTROL SEQUENCE INTRODUCER"),
    ('\u{009D}', "OPERATING SYSTEM COMMAND"),
    ('\u{00AD}', "SOFT HYPHEN"),
    ('\u{061C}', "ARABIC LETTER MARK"),
    ('\u{180E}', "MONGOLIAN VOWEL SEPARATOR"),
    ('\u{200B}', "ZERO WIDTH SPACE"),
    ('\u{200C}', "ZERO WIDTH NON-JOINER"),
    ('\u{200D}', "ZERO WIDTH JOINER"),
    ('\u{200E}', "LEFT-TO-RIGHT MARK"),
    ('\u{200F}', "RIGHT-TO-LEFT MARK"),
    ('\u{2028}', "LINE SEPARATOR"),
    ('\u{2029}', "PARAGRAPH SEPARATOR"),
    ('\u{202A}', "LEFT-TO-RIGHT EMBEDDING"),
    ('\u{202B}', "RIGHT-TO-LEFT EMBEDDING"),
    ('\u{202C}', "POP DIRECTIONAL FORMATTING"),
    ('\u{202D}', "LEFT-TO-RIGHT OVERRIDE"),
    ('\u{202E}', "RIGHT-TO-LEFT OVERRIDE"),
    ('\u{2060}', "WORD JOINER"),
    ('\u{2066}', "LEFT-TO-RIGHT ISOLATE"),
    ('\u{2067}', "RIGHT-TO-LEFT ISOLATE"),
    ('\u{2068}', "FIRST STRONG ISOLATE"),
    ('\u{2069}', "POP DIRECTIONAL ISOLATE"),
    ('\u{FEFF}', "ZERO WIDTH NO-BREAK SPACE"),
];

/// `U+202E RIGHT-TO-LEFT OVERRIDE`, or `U+0001, a control character` for a
/// character without a name here.
pub fn describe(c: char, kind: Hidden) -> String {
    match NAMES.iter().find(|(n, _)| *n == c) {
        Some((_, name)) => format!("U+{:04X} {name}", u32::from(c)),
        None => format!("U+{:04X}, {}", u32::from(c), kind.label()),
    }
}

/// The first hidden character of `text` (other than those in `allowed`), named,
/// with its position counted in characters from 1.
fn hidden_error(field: &str, text: &str, allowed: &[char]) -> Option<String> {
    text.chars()
        .enumerate()
        .filter(|(_, c)| !allowed.contains(c))
        .find_map(|(i, c)| hidden_kind(c).map(|kind| (i, c, kind)))
        .map(|(i, c, kind)| {
            format!(
                "{field} must not contain {} (at character {})",
                describe(c, kind),
                i + 1
            )
        })
}

/// Checks every field of a new key; on success, the scopes in catalogue order.
pub fn new_key(
    name: &str,
    description: &str,
    scopes: &[String],
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    catalog: &scope::Catalog,
) -> Result<Vec<String>, FieldErrors> {
    let mut errors = FieldErrors::new();
    if let Some(e) = name_error(name) {
        errors.insert("name".into(), e);
    }
    if let Some(e) = description_error(description) {
        errors.insert("description".into(), e);
    }
    if let Some(Err(e)) = expires_at.map(|at| expiry::check_expiry(at, now)) {
        errors.insert("expires_at".into(), e.to_string());
    }
    let normalized = match catalog.normalize(scopes) {
        Ok(s) if s.is_empty() => {
            errors.insert("scopes".into(), "choose at least one scope".into());
            s
        }
        Ok(s) => s,
        Err(unknown) => {
            errors.insert(
                "scopes".into(),
                format!("unknown scope {unknown:?}; known scopes: {}", catalog.ids()),
            );
            Vec::new()
        }
    };
    if errors.is_empty() {
        Ok(normalized)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_key_reports_every_bad_field() {
        let now = Utc::now();
        let catalog = scope::Catalog::default();
        let errors = new_key(
            "",
            &"x".repeat(501),
            &[],
            Some(now - chrono::Duration::seconds(1)),
            now,
            &catalog,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(fields, ["description", "expires_at", "name", "scopes"]);
        assert!(
            new_key("ok", "", &["nope".into()], None, now, &catalog).unwrap_err()["scopes"]
                .contains("nope")
        );
        assert_eq!(
            new_key(
                "ok",
                "",
                &["full_access".into(), "sessions:read".into()],
                None,
                now,
                &catalog
            )
            .unwrap(),
            ["sessions:read", "full_access"]
        );
    }

    #[test]
    fn names() {
        assert!(name_error("CI/CD Pipeline").is_none());
        assert!(name_error(&"é".repeat(100)).is_none());
        assert!(name_error("").is_some());
        assert!(name_error("   ").is_some());
        assert!(name_error(&"a".repeat(101)).is_some());
        assert!(name_error("a\u{7}b").is_some());
        assert!(name_error("a\nb").is_some());
    }

    #[test]
    fn descriptions() {
        assert!(description_error("").is_none());
        assert!(description_error("line one\nline two").is_none());
        assert!(description_error("col\tcol").is_none());
        assert!(description_error(&"x".repeat(501)).is_some());
        assert!(description_error("\u{1b}[31m").is_some());
        assert!(description_error("a\r\nb").is_some());
    }

    /// One character of every refused class, and what the message must name.
    const REFUSED: &[(char, &str)] = &[
        ('\u{0}', "U+0000 NULL"),
        ('\u{1}', "U+0001, a control character"),
        ('\u{1b}', "U+001B ESCAPE"),
        ('\u{7f}', "U+007F DELETE"),
        ('\u{85}', "U+0085 NEXT LINE"),
        ('\u{9b}', "U+009B CONTROL SEQUENCE INTRODUCER"),
        ('\u{9f}', "U+009F, a control character"),
        ('\u{ad}', "U+00AD SOFT HYPHEN"),
        ('\u{61c}', "U+061C ARABIC LETTER MARK"),
        ('\u{200b}', "U+200B ZERO WIDTH SPACE"),
        ('\u{200d}', "U+200D ZERO WIDTH JOINER"),
        ('\u{200e}', "U+200E LEFT-TO-RIGHT MARK"),
        ('\u{200f}', "U+200F RIGHT-TO-LEFT MARK"),
        ('\u{2028}', "U+2028 LINE SEPARATOR"),
        ('\u{2029}', "U+2029 PARAGRAPH SEPARATOR"),
        ('\u{202a}', "U+202A LEFT-TO-RIGHT EMBEDDING"),
        ('\u{202e}', "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ('\u{2066}', "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ('\u{2069}', "U+2069 POP DIRECTIONAL ISOLATE"),
        ('\u{2061}', "U+2061, an invisible format character"),
        ('\u{feff}', "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ('\u{fff9}', "U+FFF9, an invisible format character"),
        ('\u{e0001}', "U+E0001, an invisible format character"),
    ];

    #[test]
    fn hidden_characters_are_refused_by_name_and_position() {
        for &(c, named) in REFUSED {
            let name = format!("abcd{c}ef");
            let e = name_error(&name).unwrap_or_else(|| panic!("{c:?} accepted in a name"));
            assert_eq!(e, format!("name must not contain {named} (at character 5)"));
            let e = description_error(&format!("é{c}"))
                .unwrap_or_else(|| panic!("{c:?} accepted in a description"));
            assert_eq!(
                e,
                format!("description must not contain {named} (at character 2)")
            );
        }
        // The first one is named.
        assert!(name_error("a\u{202e}b\u{1b}").unwrap().contains("U+202E"));
    }

    #[test]
    fn hidden_classes() {
        assert_eq!(hidden_kind('\u{1b}'), Some(Hidden::Control));
        assert_eq!(hidden_kind('\u{9b}'), Some(Hidden::Control));
        assert_eq!(hidden_kind('\u{202e}'), Some(Hidden::Bidi));
        assert_eq!(hidden_kind('\u{2067}'), Some(Hidden::Bidi));
        assert_eq!(hidden_kind('\u{feff}'), Some(Hidden::Format));
        assert_eq!(hidden_kind('\u{2028}'), Some(Hidden::Separator));
        // Every Cf code point is refused, and nothing visible is.
        let format_chars = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| c.general_category() == GeneralCategory::Format)
            .count();
        assert!(format_chars > 160, "{format_chars} Cf code points");
        for c in "CI/CD Pipeline — déploiement 日本語 🚀 Ωμέγα".chars() {
            assert_eq!(hidden_kind(c), None, "{c:?}");
        }
        // Every name in the table is a hidden character of the class it is tested as.
        for (c, _) in NAMES {
            assert!(hidden_kind(*c).is_some(), "{c:?}");
        }
    }
}
