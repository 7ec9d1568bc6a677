//! Webhook notifications' domain: the event types, the endpoint's signing
//! secret (`whsec_…`) and the Standard Webhooks signature
//! (<https://www.standardwebhooks.com>), pure and free of I/O.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::Secret;

/// A key was created.
pub const API_KEY_CREATED: &str = "api_key.created";
/// A key was revoked; `data.reason` says why: admin, rotation, leak, bulk.
pub const API_KEY_REVOKED: &str = "api_key.revoked";
/// A key was rotated: `data.api_key` is the old key, `data.new_api_key` its successor.
pub const API_KEY_ROTATED: &str = "api_key.rotated";
/// A key reaches the policy's "expiring" threshold, and again one day before it expires.
pub const API_KEY_EXPIRING: &str = "api_key.expiring";
/// A key expired.
pub const API_KEY_EXPIRED: &str = "api_key.expired";
/// A key was reported leaked (`POST /v1/leaks`, GitLab, GitHub): `data.api_key`,
/// `data.exposure` (when, source, where) and `data.on_leak`, the policy applied.
pub const API_KEY_EXPOSED: &str = "api_key.exposed";
/// An admin issued the secret of a key the `rotate` leak policy made without
/// one (`data.api_key`, now usable; never the secret).
pub const API_KEY_SECRET_ISSUED: &str = "api_key.secret_issued";
pub const POLICY_UPDATED: &str = "policy.updated";
pub const USER_ADDED: &str = "user.added";
pub const USER_REMOVED: &str = "user.removed";
/// Once a day per organisation: the summary counts, the Attention list's top
/// items, the keys expiring in the next 7 days.
pub const DIGEST_DAILY: &str = "digest.daily";
/// Sent by `POST /v1/webhooks/{id}/test` to that endpoint only (never subscribed to).
pub const WEBHOOK_TEST: &str = "webhook.test";

/// The event types an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 11] = [
    API_KEY_CREATED,
    API_KEY_REVOKED,
    API_KEY_ROTATED,
    API_KEY_EXPIRING,
    API_KEY_EXPIRED,
    API_KEY_EXPOSED,
    API_KEY_SECRET_ISSUED,
    POLICY_UPDATED,
    USER_ADDED,
    USER_REMOVED,
    DIGEST_DAILY,
];

/// Why a key was revoked, as `api_key.revoked` says.
pub const REVOKE_REASONS: [&str; 4] = ["admin", "rotation", "leak", "bulk"];

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a signing secret (24: the 32 base64 characters Svix uses).
const SECRET_BYTES: usize = 24;

/// A new signing secret: `whsec_` and the base64 of random bytes.
pub fn new_signing_secret() -> Secret {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    getrandom::fill(bytes.as_mut()).expect("the OS random number generator failed");
    let mut text = Zeroizing::new(String::from(SECRET_PREFIX));
    BASE64.encode_string(bytes.as_ref(), &mut text);
    Secret::new(std::mem::take(&mut *text))
}

/// The HMAC key of a signing secret (the bytes its base64 stands for), or
/// `None` if it is not `whsec_` and base64.
pub fn secret_key(secret: &Secret) -> Option<Zeroizing<Vec<u8>>> {
    let b64 = secret.expose().strip_prefix(SECRET_PREFIX)?;
    BASE64.decode(b64).ok().map(Zeroizing::new)
}

/// One `v1,<base64>` signature of `id.timestamp.body` with `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", BASE64.encode(ctx.sign().as_ref()))
}

/// The `webhook-signature` header: one signature per secret, space-separated
/// (both the new and the previous secret during a rotation's overlap).
pub fn signature_header(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| secret_key(s))
        .map(|key| sign(&key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What stands for a credential an endpoint URL may carry.
pub const REDACTED: &str = "REDACTED";

/// An endpoint URL as audit entries, lists, prompts and logs show it: a user
/// name and password, each value of the query string (a bare item whole)
/// and a fragment replaced by [`REDACTED`], since any of them may be a
/// credential (`https://REDACTED@host/h?token=REDACTED`). Only the endpoint's
/// own record (`GET /v1/webhooks`) has the URL whole; a token in the path
/// cannot be told from the path, and is kept.
pub fn redacted_url(url: &str) -> String {
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, f)) => (rest, Some(f)),
        None => (url, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, q)) => (rest, Some(q)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(url.len());
    match rest.split_once("://") {
        Some((scheme, after)) => {
            let end = after.find('/').unwrap_or(after.len());
            let (authority, path) = after.split_at(end);
            out.push_str(scheme);
            out.push_str("://");
            if let Some((_, host)) = authority.rsplit_once('@') {
                out.push_str(REDACTED);
                out.push('@');
                out.push_str(host);
            } else {
                out.push_str(authority);
            }
            out.push_str(path);
        }
        None => out.push_str(rest),
    }
    if let Some(query) = query {
        out.push('?');
        let items: Vec<String> = query
            .split('&')
            .map(|item| match item.split_once('=') {
                Some((name, "")) => format!("{name}="),
                Some((name, _)) => format!("{name}={REDACTED}"),
                None if item.is_empty() => String::new(),
                None => REDACTED.to_owned(),
            })
            .collect();
        out.push_str(&items.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str(REDACTED);
        }
    }
    out
}

/// A webhook URL in a `Debug` print: [`redacted_url`], quoted as a string
/// would be. Types that hold a webhook URL show it through this in their
/// `Debug` impls, so a token in its query never reaches a log.
pub struct DebugUrl<'a>(pub &'a str);

impl std::fmt::Debug for DebugUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&redacted_url(self.0), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_shown_has_no_user_password_query_value_or_fragment() {
        for (url, shown) in [
            ("https://example.test/h", "https://example.test/h"),
            (
                "https://u:p@example.test/h?token=abc",
                "https://REDACTED@example.test/h?token=REDACTED",
            ),
            (
                "http://127.0.0.1:9/a/b?x=1&y=&sig&&z=a=b#frag",
                "http://127.0.0.1:9/a/b?x=REDACTED&y=&REDACTED&&z=REDACTED#REDACTED",
            ),
            ("https://h.test?k=v", "https://h.test?k=REDACTED"),
            ("https://user@h.test/p@q", "https://REDACTED@h.test/p@q"),
            ("not a url?secret", "not a url?REDACTED"),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_as_the_specification_example() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let body = br#"{"test": 2432232314}"#;
        let header = signature_header(&[&secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_are_whsec_and_base64_of_24_bytes() {
        let s = new_signing_secret();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(secret_key(&s).unwrap().len(), SECRET_BYTES);
        assert_ne!(s.expose(), new_signing_secret().expose());
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }
}
