//! Everything that can cover the table, as one enum; each kind keeps its own
//! state in its own file.

pub mod audit;
pub mod confirm;
pub mod copy_once;
pub mod create_form;

pub use audit::AuditView;
pub use confirm::{Confirm, ConfirmKind};
pub use copy_once::CopyOnce;
pub use create_form::CreateForm;

pub enum Popup {
    /// Every field of one key.
    Details(String),
    /// The help screen, scrolled down by this many lines.
    Help(u16),
    Create(Box<CreateForm>),
    CopyOnce(Box<CopyOnce>),
    Confirm(Box<Confirm>),
    /// The organisation's audit log (`a`).
    Audit(Box<AuditView>),
}

/// Which of two or more buttons has the focus.
pub fn cycle(index: usize, len: usize, forward: bool) -> usize {
    if forward {
        (index + 1) % len
    } else {
        (index + len - 1) % len
    }
}
