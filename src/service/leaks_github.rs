//! GitHub's secret-scanning partner endpoint: GitHub posts
//! `[{token, type, url, source}]` signed with ECDSA P-256/SHA-256 over the
//! raw body (`Github-Public-Key-Identifier`, `Github-Public-Key-Signature`:
//! base64 of the DER signature), checked against the public keys of a file
//! the operator configures (GitHub's own JSON shape; no network at run
//! time). Each token is answered as any leak report (`leaks.rs`); the answer
//! is GitHub's feedback shape.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json as JsonBody;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::auth::ClientAddr;
use super::error::{field_error, ApiError};
use super::extract::bytes_rejection;
use super::leaks::{token_digest, LeakActor, Report};
use super::AppState;
use crate::api::ErrorBody;
use crate::key::leak::{check_text, sha256_hex, MAX_LOCATION, MAX_REPORTS, MAX_SOURCE};

pub use super::reporter::GITHUB_PATH;

/// Longest key identifier looked at.
const MAX_KEY_ID: usize = 200;

/// GitHub's public keys, by identifier: the uncompressed P-256 points.
#[derive(Debug, Clone, Default)]
pub struct GithubKeys(Vec<(String, Vec<u8>)>);

impl GithubKeys {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads GitHub's key list: `{"public_keys":[{"key_identifier","key","is_current"}]}`
    /// with each `key` a PEM `PUBLIC KEY` (P-256).
    pub fn from_json(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct File {
            public_keys: Vec<Entry>,
        }
        #[derive(Deserialize)]
        struct Entry {
            key_identifier: String,
            key: String,
        }
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let keys = file
            .public_keys
            .into_iter()
            .map(|e| {
                let point = p256_point_from_pem(&e.key)
                    .map_err(|why| format!("key {}: {why}", e.key_identifier))?;
                Ok((e.key_identifier, point))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if keys.is_empty() {
            return Err("no public_keys".into());
        }
        Ok(Self(keys))
    }

    fn find(&self, id: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, p)| p.as_slice())
    }
}

/// The DER of a P-256 `SubjectPublicKeyInfo` up to its point: SEQUENCE,
/// SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING of 66 bytes (no
/// unused bits, then the 65-byte uncompressed point).
const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The uncompressed point (`04 ‖ X ‖ Y`) of a PEM `PUBLIC KEY` holding a
/// P-256 key, as `ring` verifies with it.
pub fn p256_point_from_pem(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PUBLIC KEY-----")
        .collect();
    if body.is_empty() {
        return Err("not a PEM PUBLIC KEY".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("bad base64: {e}"))?;
    match der.strip_prefix(&P256_SPKI_HEADER[..]) {
        Some(point) if point.len() == 65 && point[0] == 0x04 => Ok(point.to_vec()),
        _ => Err("not an uncompressed P-256 public key".into()),
    }
}

/// Whether `signature` (base64 of an ASN.1 DER ECDSA signature) signs `body` with `point`.
fn verify(point: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(body, &der)
        .is_ok()
}

/// One match GitHub found.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct GithubMatch {
    #[schema(value_type = String)]
    pub token: Zeroizing<String>,
    #[serde(rename = "type")]
    pub kind: String,
    /// Where GitHub found it.
    #[serde(default)]
    pub url: String,
    /// `content`, `commit`, `pull_request_title`, …
    #[serde(default)]
    pub source: String,
}

/// GitHub's feedback on one match: `true_positive` for a key of this service.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GithubFeedback {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub token_type: String,
    /// `true_positive` or `false_positive`.
    pub label: String,
}

/// Matches from GitHub secret scanning, signed by GitHub: each token that
/// is a key of this service is answered as any leak report.
#[utoipa::path(post, path = "/v1/github/secret-scanning", tag = "leaks",
    request_body(content = Vec<GithubMatch>, description = "1-100 of `{token, type, url, source}`, signed"),
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "Which of the configured keys signed"),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 of the ECDSA P-256/SHA-256 DER signature of the raw body"),
    ),
    responses(
        (status = 200, description = "GitHub's feedback shape, one entry per match", body = Vec<GithubFeedback>),
        (status = 400, body = ErrorBody),
        (status = 401, description = "No signature, an unknown key identifier or a bad signature", body = ErrorBody),
        (status = 404, description = "No GitHub keys are configured (`serve --github-keys-file`)", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "`rate_limited`; Retry-After", body = ErrorBody),
        (status = 503, description = "`database_unavailable`; Retry-After", body = ErrorBody),
    ))]
pub async fn receive(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<JsonBody<Vec<GithubFeedback>>, ApiError> {
    let keys = &state.leaks.config.github_keys;
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(key_id), Some(signature)) = (
        header("github-public-key-identifier"),
        header("github-public-key-signature"),
    ) else {
        return Err(ApiError::MissingCredentials);
    };
    let body = body.map_err(bytes_rejection)?;
    let point = (key_id.len() <= MAX_KEY_ID)
        .then(|| keys.find(key_id))
        .flatten()
        .ok_or(ApiError::InvalidCredentials)?;
    if !verify(point, &body, signature) {
        return Err(ApiError::InvalidCredentials);
    }
    state.leaks.admit("github", state.clock.now())?;
    let matches: Vec<GithubMatch> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "The body must be a JSON array of {{token, type, url, source}} (line {}, column {}).",
            e.line(),
            e.column()
        ))
    })?;
    if matches.is_empty() || matches.len() > MAX_REPORTS {
        return Err(ApiError::BadRequest(format!(
            "Send 1 to {MAX_REPORTS} matches."
        )));
    }
    let mut reports = Vec::with_capacity(matches.len());
    let mut feedback = Vec::with_capacity(matches.len());
    for (i, m) in matches.iter().enumerate() {
        check_text(&format!("[{i}].url"), &m.url, MAX_LOCATION)
            .and_then(|()| check_text(&format!("[{i}].type"), &m.kind, MAX_SOURCE))
            .and_then(|()| check_text(&format!("[{i}].source"), &m.source, MAX_SOURCE))
            .map_err(|msg| field_error(&format!("[{i}]"), msg))?;
        let digest = token_digest(&state, &m.token, &format!("[{i}].token"))?;
        feedback.push(GithubFeedback {
            token_hash: sha256_hex(&crate::key::digest(&m.token)),
            token_type: m.kind.clone(),
            label: "false_positive".into(),
        });
        reports.push(Report {
            digest,
            location: m.url.clone(),
            source: if m.source.is_empty() {
                "github".to_owned()
            } else {
                format!("github {}", m.source)
            },
        });
    }
    drop(matches);
    let actor = LeakActor {
        kind: "code_host",
        id: "github".into(),
        name: "GitHub".into(),
        addr: Some(addr.to_string()),
    };
    let found = state.respond_all(reports, None, &actor).await?;
    for f in &mut feedback {
        if found.iter().any(|(_, d)| sha256_hex(d) == f.token_hash) {
            f.label = "true_positive".into();
        }
    }
    Ok(JsonBody(feedback))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    /// A fresh P-256 key pair, and its public key as a PEM SPKI.
    fn pair() -> (EcdsaKeyPair, String) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut der = P256_SPKI_HEADER.to_vec();
        der.extend_from_slice(pair.public_key().as_ref());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &b64[..64],
            &b64[64..]
        );
        (pair, pem)
    }

    #[test]
    fn a_pem_key_verifies_its_own_signatures_only() {
        let (pair, pem) = pair();
        let point = p256_point_from_pem(&pem).unwrap();
        assert_eq!(point, pair.public_key().as_ref());
        let rng = ring::rand::SystemRandom::new();
        let sig = pair.sign(&rng, b"[1]").unwrap();
        let sig = base64::engine::general_purpose::STANDARD.encode(sig.as_ref());
        assert!(verify(&point, b"[1]", &sig));
        assert!(!verify(&point, b"[2]", &sig));
        assert!(!verify(&point, b"[1]", "not base64!"));
        let (_, other) = pair_other();
        assert!(!verify(&p256_point_from_pem(&other).unwrap(), b"[1]", &sig));
    }

    fn pair_other() -> (EcdsaKeyPair, String) {
        pair()
    }

    #[test]
    fn what_is_not_a_p256_pem_key_is_refused() {
        assert!(p256_point_from_pem("").is_err());
        assert!(
            p256_point_from_pem("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----")
                .is_err()
        );
        // An Ed25519 SPKI.
        let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----";
        assert!(p256_point_from_pem(ed).unwrap_err().contains("P-256"));
        let (_, pem) = pair();
        let json = serde_json::json!({"public_keys": [
            {"key_identifier": "k1", "key": pem, "is_current": true}]});
        let keys = GithubKeys::from_json(&json.to_string()).unwrap();
        assert!(keys.find("k1").is_some() && keys.find("k2").is_none());
        assert!(GithubKeys::from_json(r#"{"public_keys":[]}"#).is_err());
        assert!(
            GithubKeys::from_json(r#"{"public_keys":[{"key_identifier":"x","key":"nope"}]}"#)
                .unwrap_err()
                .contains("key x")
        );
    }
}
