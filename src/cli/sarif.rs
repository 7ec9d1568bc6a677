//! `keydeck scan --format sarif`: the findings as a SARIF 2.1.0 log, the
//! format code-scanning services take; only the parts of the schema it uses.

use serde::Serialize;

use super::finding::Hit;

/// The rule id, the same as the gitleaks rule's (`assets/gitleaks/keydeck.toml`).
pub const RULE_ID: &str = "keydeck-api-key";
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Serialize)]
pub struct Log {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    /// Columns count Unicode code points, as the text output's do.
    column_kind: &'static str,
    results: Vec<Finding>,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    rules: [Rule; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: &'static str,
    name: &'static str,
    short_description: Text,
    full_description: Text,
    default_configuration: Configuration,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Finding {
    rule_id: &'static str,
    rule_index: u32,
    level: &'static str,
    message: Text,
    locations: [Location; 1],
    /// The key's SHA-256, so that a code-scanning service tells one key from another.
    partial_fingerprints: Fingerprints,
}

#[derive(Serialize)]
struct Fingerprints {
    #[serde(rename = "keydeckKeySha256/v1")]
    sha256: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
}

/// The log of one run of `keydeck scan` that found `hits`.
pub fn log(hits: &[Hit]) -> Log {
    let results = hits
        .iter()
        .map(|hit| Finding {
            rule_id: RULE_ID,
            rule_index: 0,
            level: "error",
            message: Text {
                text: format!(
                    "keydeck API key {}: revoke or rotate it, then remove it from the file and its history",
                    crate::present::prefix(&hit.prefix)
                ),
            },
            locations: [Location {
                physical_location: PhysicalLocation {
                    artifact_location: ArtifactLocation {
                        uri: uri(&hit.path),
                    },
                    region: Region {
                        start_line: hit.line,
                        start_column: hit.column,
                    },
                },
            }],
            partial_fingerprints: Fingerprints {
                sha256: hit.sha256.clone(),
            },
        })
        .collect();
    Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool { driver: driver() },
            column_kind: "unicodeCodePoints",
            results,
        }],
    }
}

fn driver() -> Driver {
    Driver {
        name: "keydeck",
        version: env!("CARGO_PKG_VERSION"),
        rules: [Rule {
            id: RULE_ID,
            name: "KeydeckApiKey",
            short_description: Text {
                text: "A keydeck API key in a file".to_owned(),
            },
            full_description: Text {
                text: "A string in this deployment's key format whose checksum holds: \
                       a real key, readable by anyone who can read the file."
                    .to_owned(),
            },
            default_configuration: Configuration { level: "error" },
        }],
    }
}

/// A path as a relative URI reference: `/` kept, anything outside RFC 3986's
/// unreserved characters percent-encoded byte by byte.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri("src/a b/ké.rs"), "src/a%20b/k%C3%A9.rs");
        assert_eq!(uri("<stdin>"), "%3Cstdin%3E");
    }
}
