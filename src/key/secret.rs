//! Secret generation, the checksummed key format, and a secret type that never prints itself.
//!
//! A secret is `PREFIX` + 32 random base62 characters + 6 base62 characters of
//! the CRC32 of everything before them. The checksum lets a parser reject a
//! mistyped or invented key without any lookup.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters in a secret: 32 × log2(62) ≈ 190 bits.
pub const RANDOM_LEN: usize = 32;
/// Checksum characters: 62^6 > 2^32, so any CRC32 fits.
pub const CHECKSUM_LEN: usize = 6;
/// Random characters shown after the prefix in the display prefix (`eg_live_1a2B`).
pub const DISPLAY_RANDOM_LEN: usize = 4;
/// The default literal prefix of API keys.
pub const DEFAULT_KEY_PREFIX: &str = "eg_live_";
/// The literal prefix of user access tokens.
pub const USER_TOKEN_PREFIX: &str = "kdt_";

/// A new random identifier: `prefix` and 20 base62 characters, such as
/// `key_4ZP0tq8b1X7mUe2RwY9c`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", random_base62(20).as_str())
}

/// `len` characters drawn uniformly from base62 using the OS CSPRNG.
pub fn random_base62(len: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(len));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < len {
        getrandom::fill(buf.as_mut()).expect("the OS random number generator failed");
        // 248 = 4 × 62: rejecting bytes at or above it keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(BASE62[usize::from(b % 62)] as char);
        }
    }
    out
}

fn checksum(body: &str) -> String {
    String::from_utf8(checksum_bytes(body.as_bytes()).to_vec()).expect("base62 is ASCII")
}

/// The base62 characters of the CRC32 of `body` (prefix and random part).
fn checksum_bytes(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(body);
    let mut chars = [b'0'; CHECKSUM_LEN];
    for c in chars.iter_mut().rev() {
        *c = BASE62[(n % 62) as usize];
        n /= 62;
    }
    chars
}

/// Whether `candidate` (prefix, random part, checksum) ends in the checksum
/// of the rest: the scanner's test, on bytes, without building a `Secret`.
pub(crate) fn checksum_holds(candidate: &[u8]) -> bool {
    candidate.len() > CHECKSUM_LEN && {
        let (body, sum) = candidate.split_at(candidate.len() - CHECKSUM_LEN);
        checksum_bytes(body) == sum
    }
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The SHA-256 digest of a secret: the only form in which secrets are stored.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A secret value. `Debug` shows `***`, there is no `Display`, and the memory
/// is wiped when it is dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself; call only where it must leave the process (a response, a clipboard).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> [u8; 32] {
        digest(&self.0)
    }

    /// Zeroes the secret's bytes in place now (dropping does the same), and
    /// leaves it empty. The allocation is kept until the secret is dropped.
    pub fn wipe(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a string is not a well-formed secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretParseError {
    #[error("the key does not start with this deployment's prefix")]
    WrongPrefix,
    #[error("the key has the wrong length")]
    WrongLength,
    #[error("the key contains characters that are not base62")]
    NotBase62,
    #[error("the key's checksum does not match (mistyped or not a real key)")]
    BadChecksum,
}

/// A key prefix that is not 2–16 characters of `a-z`, `0-9` and `_` ending in `_`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key prefix {0:?} must be 2-16 characters of a-z, 0-9 and _, ending in _")]
pub struct BadKeyPrefix(pub String);

/// A secret format: its literal prefix, e.g. `eg_live_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFormat {
    prefix: String,
}

impl Default for SecretFormat {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

impl SecretFormat {
    /// A format with a custom prefix: 2–16 characters of `a-z`, `0-9` and `_`, ending in `_`.
    pub fn new(prefix: &str) -> Result<Self, BadKeyPrefix> {
        let ok_chars = prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !(2..=16).contains(&prefix.len()) || !ok_chars || !prefix.ends_with('_') {
            return Err(BadKeyPrefix(prefix.to_owned()));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub fn user_token() -> Self {
        Self {
            prefix: USER_TOKEN_PREFIX.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Total length of a secret in this format.
    pub fn secret_len(&self) -> usize {
        self.prefix.len() + RANDOM_LEN + CHECKSUM_LEN
    }

    /// A fresh random secret.
    pub fn generate(&self) -> Secret {
        let mut s = Zeroizing::new(String::with_capacity(self.secret_len()));
        s.push_str(&self.prefix);
        s.push_str(&random_base62(RANDOM_LEN));
        let sum = checksum(&s);
        s.push_str(&sum);
        Secret(s)
    }

    /// Checks the shape and checksum of `input` without any lookup.
    pub fn parse(&self, input: &str) -> Result<Secret, SecretParseError> {
        let rest = input
            .strip_prefix(self.prefix.as_str())
            .ok_or(SecretParseError::WrongPrefix)?;
        if rest.len() != RANDOM_LEN + CHECKSUM_LEN {
            return Err(SecretParseError::WrongLength);
        }
        if !is_base62(rest) {
            return Err(SecretParseError::NotBase62);
        }
        let (body, sum) = input.split_at(input.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(SecretParseError::BadChecksum);
        }
        Ok(Secret::new(input.to_owned()))
    }

    /// The part of a secret that may be stored and shown: prefix plus 4 characters.
    pub fn display_prefix(&self, secret: &Secret) -> String {
        secret.expose()[..self.prefix.len() + DISPLAY_RANDOM_LEN].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_the_documented_shape() {
        let f = SecretFormat::default();
        let s = f.generate();
        let v = s.expose();
        assert_eq!(v.len(), 8 + 32 + 6);
        assert!(v.starts_with("eg_live_"));
        assert!(is_base62(&v[8..]));
        assert_eq!(f.parse(v).unwrap(), s);
        assert_eq!(f.display_prefix(&s).len(), 12);
        assert!(v.starts_with(&f.display_prefix(&s)));
    }

    #[test]
    fn secrets_differ_and_use_the_whole_alphabet() {
        let f = SecretFormat::default();
        let a = f.generate();
        let b = f.generate();
        assert_ne!(a, b);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(random_base62(32).chars());
        }
        assert_eq!(seen.len(), 62);
    }

    #[test]
    fn new_ids_are_the_prefix_and_twenty_base62_characters() {
        let (a, b) = (new_id("key_"), new_id("key_"));
        assert_eq!(a.len(), 4 + 20);
        assert!(a.starts_with("key_") && is_base62(&a[4..]), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn one_changed_character_is_rejected_by_the_checksum() {
        let f = SecretFormat::default();
        let s = f.generate();
        let v = s.expose();
        for i in 8..v.len() {
            let mut bytes = v.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(
                f.parse(&changed),
                Err(SecretParseError::BadChecksum),
                "position {i}"
            );
        }
    }

    #[test]
    fn malformed_inputs_are_rejected_with_a_reason() {
        let f = SecretFormat::default();
        let good = f.generate();
        let v = good.expose();
        assert_eq!(f.parse(""), Err(SecretParseError::WrongPrefix));
        assert_eq!(
            f.parse(&v.replace("eg_live_", "eg_test_")),
            Err(SecretParseError::WrongPrefix)
        );
        assert_eq!(
            f.parse(&v[..v.len() - 1]),
            Err(SecretParseError::WrongLength)
        );
        let mut bad = v.to_owned();
        bad.replace_range(10..11, "-");
        assert_eq!(f.parse(&bad), Err(SecretParseError::NotBase62));
        assert!(f.parse(&format!("{v}x")).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = SecretFormat::default().generate();
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains(&s.expose()[8..]));
        assert!(shown.contains("***"));
    }

    #[test]
    fn custom_prefixes_are_validated() {
        assert!(SecretFormat::new("acme_").is_ok());
        assert!(SecretFormat::new("Acme_").is_err());
        assert!(SecretFormat::new("acme").is_err());
        assert!(SecretFormat::new("_").is_err());
        let f = SecretFormat::new("acme_prod_").unwrap();
        let s = f.generate();
        assert!(f.parse(s.expose()).is_ok());
        assert_eq!(
            SecretFormat::default().parse(s.expose()),
            Err(SecretParseError::WrongPrefix)
        );
    }

    #[test]
    fn digest_is_sha256() {
        assert_eq!(
            digest("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
    }
}
