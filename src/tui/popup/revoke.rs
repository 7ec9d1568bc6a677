//! The revoke dialogs: what `d` asks (the marked keys shown, or the selected one),
//! what `X` asks (every expired key), and the orphan question after a lost
//! create answer. Each is a [`Confirm`] that stores the revoke a yes fires.

use chrono::{DateTime, Utc};

use super::{Confirm, Popup, Then};
use crate::api::ApiKey;
use crate::key::KeyStatus;
use crate::present::DisplayTz;

/// The marks as `d` sees them: the marked keys among the rows shown, in
/// their order, and how many marked keys the filter hides.
#[derive(Debug, Clone, Copy)]
pub struct Marks<'a> {
    pub shown: &'a [&'a ApiKey],
    pub hidden: usize,
}

/// What `d` opens: revoke the marked keys shown if any key is marked (a
/// hidden mark is never acted on), else the selected key (or say why there
/// is nothing to do); `None` without either.
pub fn ask(
    marks: Marks,
    selected: Option<&ApiKey>,
    now: DateTime<Utc>,
    tz: DisplayTz,
) -> Option<Popup> {
    if !marks.shown.is_empty() || marks.hidden > 0 {
        return Some(Popup::Confirm(Box::new(marked(marks, now))));
    }
    let key = selected?;
    let dialog = match KeyStatus::derive(key.revoked_at, key.expires_at, now) {
        KeyStatus::Revoked => Confirm::notice(
            "Already revoked",
            vec![format!(
                "“{}” was revoked {} by {}. It no longer works; there is nothing more to do.",
                key.name,
                key.revoked_at.map_or_else(String::new, |t| tz.exact(t)),
                key.revoked_by.as_deref().unwrap_or("an admin"),
            )],
        ),
        status => one(key, status == KeyStatus::Expired),
    };
    Some(Popup::Confirm(Box::new(dialog)))
}

/// What `X` opens: revoke every expired key, or say there is none.
pub fn ask_expired(keys: &[ApiKey], now: DateTime<Utc>) -> Popup {
    let expired: Vec<ApiKey> = keys
        .iter()
        .filter(|k| KeyStatus::derive(k.revoked_at, k.expires_at, now) == KeyStatus::Expired)
        .cloned()
        .collect();
    let dialog = if expired.is_empty() {
        Confirm::notice(
            "No expired keys",
            vec!["There are no expired keys to clean up.".into()],
        )
    } else {
        expired_many(expired)
    };
    Popup::Confirm(Box::new(dialog))
}

/// Revoke one key.
pub fn one(key: &ApiKey, expired: bool) -> Confirm {
    let access = if key.secret_pending && !expired {
        "Nothing can use it: it has no secret yet, so no application loses access."
    } else {
        "Any applications using it will immediately lose access."
    };
    let mut lines = vec![
        named(key),
        String::new(),
        format!("Are you sure you want to revoke this API key? {access}"),
    ];
    if expired {
        lines.push(String::new());
        lines.push("This key has already expired and no longer works; revoking it records that it must never be used again.".into());
    }
    Confirm::ask("Revoke API key", lines, "Revoke", Then::Revoke(key.clone()))
}

/// "1 key", "3 keys".
fn keys_word(n: usize) -> String {
    match n {
        1 => "1 key".to_owned(),
        n => format!("{n} keys"),
    }
}

/// `d` with keys marked: exactly the marked keys shown that still work, in
/// the table's order, and what happens to the other marks.
fn marked(marks: Marks, now: DateTime<Utc>) -> Confirm {
    let live: Vec<ApiKey> = marks
        .shown
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .map(|k| (*k).clone())
        .collect();
    let revoked = marks.shown.len() - live.len();
    let hidden = match marks.hidden {
        0 => None,
        1 => Some("1 marked key the filter hides is left alone (still marked).".to_owned()),
        n => Some(format!(
            "{n} marked keys the filter hides are left alone (still marked)."
        )),
    };
    if live.is_empty() {
        let lines = match hidden {
            None => vec!["Every marked key is already revoked.".into()],
            Some(hidden) => {
                let mut lines = Vec::new();
                if revoked > 0 {
                    lines.push("Every marked key shown is already revoked.".to_owned());
                }
                lines.push(hidden);
                lines.push("Esc clears the filter and shows them.".into());
                lines
            }
        };
        return Confirm::notice("Nothing to revoke", lines);
    }
    let mut notes = Vec::new();
    if revoked > 0 {
        notes.push(format!(
            "{} marked already revoked: nothing more to do for {}.",
            keys_word(revoked),
            if revoked == 1 { "it" } else { "them" }
        ));
    }
    notes.extend(hidden);
    many_with(live, "the marked keys", notes, now)
}

/// Revoke every expired key: they already fail authentication, so no
/// application loses anything; revoking records that they stay dead.
fn expired_many(keys: Vec<ApiKey>) -> Confirm {
    let (n, they, fail) = match keys.len() {
        1 => (1, "it", "fails"),
        n => (n, "they", "fail"),
    };
    let mut lines = vec![format!(
        "Revoke {} ({they} already {fail} authentication)?",
        crate::present::count(n, "expired key", "expired keys")
    )];
    list_keys(&mut lines, &keys);
    lines.push(String::new());
    lines.push(format!(
        "Nothing using {} works now; revoking records that {they} must never be used again.",
        if n == 1 { "it" } else { "them" }
    ));
    Confirm::ask(
        "Revoke expired keys",
        lines,
        "Revoke all",
        Then::RevokeMany(keys),
    )
}

/// A key as a dialog names it: `“name”  eg_live_abcd...`, or `“name”  no
/// secret yet` for a key whose secret was never issued (its prefix is only
/// the format's, `eg_live_`: nothing to recognise it by).
fn named(key: &ApiKey) -> String {
    if key.secret_pending {
        format!("“{}”  no secret yet", key.name)
    } else {
        format!("“{}”  {}...", key.name, key.prefix)
    }
}

/// The first six of `keys`, one a line, then how many more.
fn list_keys(lines: &mut Vec<String>, keys: &[ApiKey]) {
    for k in keys.iter().take(6) {
        lines.push(format!("  • {}", named(k)));
    }
    if keys.len() > 6 {
        lines.push(format!("  … and {} more", keys.len() - 6));
    }
}

/// Revoke all of `keys`, then `notes` on what is not revoked.
fn many_with(keys: Vec<ApiKey>, which: &str, notes: Vec<String>, now: DateTime<Utc>) -> Confirm {
    let mut lines = vec![format!(
        "Revoke {which}: {} key{}?",
        keys.len(),
        if keys.len() == 1 { "" } else { "s" }
    )];
    list_keys(&mut lines, &keys);
    if !notes.is_empty() {
        lines.push(String::new());
        lines.extend(notes);
    }
    lines.push(String::new());
    lines.push(who_loses_access(&keys, now));
    Confirm::ask(
        "Revoke API keys",
        lines,
        "Revoke all",
        Then::RevokeMany(keys),
    )
}

/// Who loses access when `keys` are revoked: applications using the keys
/// that work; none through a key without a secret yet or an expired one,
/// which nothing can use (said, and counted when some of the keys work).
fn who_loses_access(keys: &[ApiKey], now: DateTime<Utc>) -> String {
    let expired = keys
        .iter()
        .filter(|k| KeyStatus::derive(k.revoked_at, k.expires_at, now) == KeyStatus::Expired)
        .count();
    let pending = keys
        .iter()
        .filter(|k| k.secret_pending)
        .filter(|k| KeyStatus::derive(k.revoked_at, k.expires_at, now) == KeyStatus::Active)
        .count();
    let unusable = expired + pending;
    if unusable == 0 {
        return "Any applications using them will immediately lose access.".into();
    }
    let has = |n: usize| if n == 1 { "has" } else { "have" };
    let mut why = Vec::new();
    if pending > 0 {
        why.push(format!("{pending} {} no secret yet", has(pending)));
    }
    if expired > 0 {
        why.push(format!("{expired} {} expired", has(expired)));
    }
    let why = why.join(", ");
    let usable = keys.len() - unusable;
    match usable {
        0 if keys.len() == 1 => format!(
            "Nothing can use it: it {}, so no application loses access.",
            if pending == 1 { "has no secret yet" } else { "has expired" }
        ),
        0 if pending == keys.len() => {
            "Nothing can use them: none has a secret yet, so no application loses access.".into()
        }
        0 => format!("Nothing can use them ({why}): no application loses access."),
        1 => format!(
            "Any applications using the 1 key that works will immediately lose access; nothing can use the other {unusable} ({why})."
        ),
        n => format!(
            "Any applications using the {n} keys that work will immediately lose access; nothing can use the other {unusable} ({why})."
        ),
    }
}

/// A create's answer was lost and the key exists without a known secret:
/// revoke it (recommended, so focused) or keep it.
pub fn orphan(key: &ApiKey) -> Popup {
    let lines = vec![
        format!("The key “{}” ({}...) was created, but the answer carrying its secret was lost on the way.", key.name, key.prefix),
        "The secret cannot be shown again, so nobody can use this key.".into(),
        String::new(),
        "Revoke it now? (Recommended; then create a new one.)".into(),
    ];
    let dialog = Confirm::ask(
        "Key created, secret lost",
        lines,
        "Revoke",
        Then::Revoke(key.clone()),
    )
    .no_label("Keep")
    .on_no(Then::KeepOrphan(key.clone()))
    .focus_yes();
    Popup::Confirm(Box::new(dialog))
}
