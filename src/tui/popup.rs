//! Everything that can cover the table, as one enum, and the one outcome
//! type their key handling returns. Each kind keeps its state, keys and
//! drawing in its own file (help, details, audit, create, copy_once, dialog
//! with revoke and rotate); `App::apply` carries out every outcome.

use super::action::{Effect, Request};
pub use super::audit::AuditView;
pub use super::copy_once::CopyOnce;
pub use super::create::CreateForm;
pub use super::dialog::{Confirm, ConfirmKind};

/// What a key in a popup asks the app to do.
pub enum Outcome {
    /// Nothing beyond the popup's own state.
    Stay,
    /// Close the popup.
    Close,
    /// Open another popup on top.
    Open(Popup),
    /// Send a request (the popup stays).
    Request(Request),
    /// Local work (the clipboard).
    Local(Effect),
    /// A dialog was answered: close it and do (or not) what it asked.
    Decided {
        kind: ConfirmKind,
        yes: bool,
        grace_seconds: u32,
    },
}

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
