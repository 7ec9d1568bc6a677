//! One key `keydeck scan` found: where it is and what may be shown of it,
//! for the text, JSON and SARIF reports alike.

use serde::Serialize;

/// One key found: where, and what may be shown of it. The key itself is
/// gone by then: only its display prefix and digest are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub path: String,
    pub line: usize,
    /// In characters (Unicode code points), 1-based.
    pub column: usize,
    /// The display prefix (`eg_live_1a2B`), as `keys list` shows it.
    pub prefix: String,
    /// The SHA-256 of the key, hex: what the service stores and `--report` sends.
    pub sha256: String,
}

impl Hit {
    /// `path:line:column`.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.path, self.line, self.column)
    }
}
