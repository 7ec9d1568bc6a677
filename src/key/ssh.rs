//! SSH public keys as keydeck reads them: one OpenSSH line parsed and
//! checked, and the `SHA256:…` fingerprint it stores and logs.

use russh::keys::{HashAlg, PublicKey};

/// Why a public key line was refused, in words for the person who gave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPublicKey(pub String);

/// Longest public key line accepted (an RSA-16384 line is about 2.8 KB).
pub const KEY_LINE_MAX: usize = 8 * 1024;
/// Longest comment kept.
pub const COMMENT_MAX: usize = 200;

/// A public key as an OpenSSH line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    pub fingerprint: String,
    pub algorithm: String,
    /// The line without its comment.
    pub public_key: String,
    pub comment: String,
}

/// The fingerprint keydeck stores and logs: `SHA256:…`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Parses one OpenSSH public key line (`ssh-ed25519 AAAA… comment`). Blank
/// lines and `#` comments around it are ignored; anything else is refused
/// with the reason.
pub fn parse_public_key(text: &str) -> Result<ParsedKey, BadPublicKey> {
    let invalid = |why: &str| {
        BadPublicKey(format!(
            "not an OpenSSH public key ({why}): give a line such as \
             \"ssh-ed25519 AAAAC3Nz... you@laptop\", a path to a .pub file, or - for standard input"
        ))
    };
    if text.len() > KEY_LINE_MAX {
        return Err(invalid(&format!("longer than {KEY_LINE_MAX} bytes")));
    }
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().ok_or_else(|| invalid("empty"))?;
    if lines.next().is_some() {
        return Err(invalid("more than one key: add them one at a time"));
    }
    let key = PublicKey::from_openssh(line).map_err(|e| invalid(&e.to_string()))?;
    let algorithm = key.algorithm().as_str().to_owned();
    if matches!(algorithm.as_str(), "ssh-rsa" | "ssh-dss") {
        return Err(BadPublicKey(format!(
            "{algorithm} keys are not accepted: use an Ed25519 or ECDSA key \
             (ssh-keygen -t ed25519)"
        )));
    }
    let mut fields = line.splitn(3, char::is_whitespace);
    let public_key = format!(
        "{} {}",
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default()
    );
    let comment: String = fields
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(COMMENT_MAX)
        .collect();
    Ok(ParsedKey {
        fingerprint: fingerprint(&key),
        algorithm,
        public_key,
        comment,
    })
}
