//! The audit log screen's state: who created, revoked and rotated which key.

use crate::api::AuditEntry;

#[derive(Default)]
pub struct AuditView {
    pub entries: Vec<AuditEntry>,
    pub loading: bool,
    pub error: Option<String>,
    /// The first entry on screen.
    pub scroll: usize,
}
