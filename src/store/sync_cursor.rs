//! Opaque sync cursors (PostgreSQL): a keyed permutation of the 64-bit change
//! cursor, so that the `sync_cursor` of `GET /v1/api-keys` tells an
//! organisation nothing it could compare or subtract (the transaction ids
//! behind it count every organisation's writes).
//!
//! A four-round Feistel network on two 32-bit halves (Luby–Rackoff: a
//! pseudorandom permutation when its round function is a pseudorandom
//! function) whose round function is HMAC-SHA256, keyed by a secret every
//! replica reads from the database and bound to the organisation: one
//! organisation's cursors say nothing about another's, and a cursor taken to
//! another organisation (or made up) opens to an unrelated number, which at
//! worst lists too much or too little of that organisation's own keys.

use ring::hmac;

/// Rounds of the Feistel network.
const ROUNDS: u8 = 4;

/// The key of the permutation; its bytes never leave `ring`.
pub struct CursorKey(hmac::Key);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// From the shared secret (32 random bytes).
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// Round `round`'s function of `half`, for `org`: the first 32 bits of
    /// HMAC(secret, len(org) ‖ org ‖ round ‖ half).
    fn round(&self, org: &str, round: u8, half: u32) -> u32 {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(&(org.len() as u64).to_be_bytes());
        ctx.update(org.as_bytes());
        ctx.update(&[round]);
        ctx.update(&half.to_be_bytes());
        let tag = ctx.sign();
        let mut first = [0u8; 4];
        first.copy_from_slice(&tag.as_ref()[..4]);
        u32::from_be_bytes(first)
    }

    /// The opaque form of `org`'s cursor `value`.
    pub fn seal(&self, org: &str, value: u64) -> u64 {
        let (mut left, mut right) = ((value >> 32) as u32, value as u32);
        for round in 0..ROUNDS {
            let next = left ^ self.round(org, round, right);
            left = right;
            right = next;
        }
        (u64::from(left) << 32) | u64::from(right)
    }

    /// The cursor [`seal`](Self::seal) made `sealed` from (any `sealed`
    /// opens to some value: the permutation has no invalid inputs).
    pub fn open(&self, org: &str, sealed: u64) -> u64 {
        let (mut left, mut right) = ((sealed >> 32) as u32, sealed as u32);
        for round in (0..ROUNDS).rev() {
            let previous = right ^ self.round(org, round, left);
            right = left;
            left = previous;
        }
        (u64::from(left) << 32) | u64::from(right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_undoes_sealing_and_orgs_and_secrets_differ() {
        let key = CursorKey::new(&[7u8; 32]);
        let other_secret = CursorKey::new(&[8u8; 32]);
        for value in [
            0,
            1,
            2,
            1_000,
            812_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let sealed = key.seal("org_a", value);
            assert_eq!(key.open("org_a", sealed), value);
            assert_ne!(sealed, value);
            assert_ne!(sealed, key.seal("org_b", value), "{value}");
            assert_ne!(sealed, other_secret.seal("org_a", value), "{value}");
            // Opened for another organisation: some unrelated value.
            assert_ne!(key.open("org_b", sealed), value);
        }
    }

    #[test]
    fn consecutive_cursors_do_not_look_consecutive() {
        let key = CursorKey::new(&[1u8; 32]);
        let a = key.seal("org_a", 1_000_000);
        let b = key.seal("org_a", 1_000_001);
        // About half of the 64 bits differ; a counter would differ in one or two.
        assert!((a ^ b).count_ones() > 8, "{a:x} {b:x}");
        assert!(key.seal("org_a", 1_000_002).abs_diff(b) > 1 << 20);
    }

    #[test]
    fn debug_shows_no_secret() {
        assert_eq!(
            format!("{:?}", CursorKey::new(&[42u8; 32])),
            "CursorKey(..)"
        );
    }
}
