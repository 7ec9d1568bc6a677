//! Everything that can cover the table, as one enum. Each kind is one file
//! with its state, keys, hints and drawing (help, details, audit, create,
//! copy_once, confirm with revoke's questions, rotate, webhooks, policy). A popup draws from a
//! [`Ctx`], never from the app, and changes nothing outside itself: a key in
//! it returns an [`Intent`], which the app carries out in one place (gitui's
//! `popups/confirm.rs` and `queue.rs`).

pub mod audit;
pub mod confirm;
pub mod copy_once;
pub mod create;
pub mod details;
pub mod help;
pub mod palette;
pub mod policy;
pub mod revoke;
pub mod rotate;
pub mod usage;
pub mod webhook_deliveries;
pub mod webhooks;

use chrono::{DateTime, Duration, Utc};
use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::Frame;

pub use self::audit::AuditView;
pub use self::confirm::Confirm;
pub use self::copy_once::CopyOnce;
pub use self::create::CreateForm;
pub use self::details::DetailsView;
pub use self::help::HelpView;
pub use self::palette::CommandPalette;
pub use self::policy::PolicyEditor;
pub use self::rotate::Rotate;
pub use self::webhooks::WebhooksView;
use super::keymap::{Command, Context};
use super::theme::Styles;
use crate::api::{ApiKey, CreateKeyRequest, ScopeInfo};
use crate::key::health::{self, Badges};
use crate::key::policy::Policy;
use crate::key::{KeyStatus, Secret};
use crate::present::DisplayTz;

pub enum Popup {
    /// Every field of one key, scrolled.
    Details(Box<DetailsView>),
    /// The help screen: scrolled, maybe filtered.
    Help(Box<HelpView>),
    /// The command palette (`:`).
    Palette(Box<CommandPalette>),
    Create(Box<CreateForm>),
    CopyOnce(Box<CopyOnce>),
    /// A yes/no question (revoke, discard, close uncopied) or a notice.
    Confirm(Box<Confirm>),
    /// Rotate a key, with a grace period for the old one.
    Rotate(Box<Rotate>),
    /// The organisation's audit log (`a`).
    Audit(Box<AuditView>),
    /// The organisation's usage (`u`).
    Usage(Box<usage::UsageScreen>),
    /// The webhook endpoints and their deliveries (`W`).
    Webhooks(Box<WebhooksView>),
    /// The organisation's key policy, edited (`P`).
    Policy(Box<PolicyEditor>),
}

/// What a key in a popup asks the app to do: a popup's only way to change
/// anything outside itself.
pub enum Intent {
    /// Nothing beyond the popup's own state.
    Stay,
    /// Open another popup on top of this one.
    Open(Popup),
    /// Send the create form's request; the form waits for the answer.
    Create {
        request: CreateKeyRequest,
        idempotency_key: String,
    },
    /// Load the audit log again.
    /// Read the audit log again (of this key alone, if one).
    ReloadAudit(Option<String>),
    /// A request of the webhooks screen; its answer goes back to it.
    Webhooks(crate::tui::action::WebhookOp),
    /// Open the audit log of this key (by id) on top.
    AuditOf(String),
    /// Run a command of the table on this key (by id), not on the
    /// selection: revoke, rotate or copy the id from its details.
    ForKey(Command, String),
    /// Close this popup (the palette) and run a command of the table.
    Run(Command),
    /// Put the new secret on the clipboard.
    CopySecret(Secret),
    /// Load a key's usage over a window (the details view's `1`–`3`).
    LoadUsage {
        id: String,
        window: crate::api::UsageWindow,
    },
    /// Load the organisation's usage over a window (the usage screen).
    LoadOrgUsage(crate::api::UsageWindow),
    /// Open the details of this key (by id), with its usage.
    DetailsOf(String),
    /// Close this popup.
    Close,
    /// Close this popup, then do what it decided.
    CloseThen(Then),
}

/// What a dialog's answer does once the dialog is closed: stored in the
/// dialog when it opens, fired by yes (or no), carried out by the app.
#[derive(Debug, Clone)]
pub enum Then {
    /// Close the popup under the dialog too: the create form, or the
    /// copy-once modal and with it the secret.
    CloseParent,
    Revoke(ApiKey),
    /// Revoke all of these (the marked keys shown, or every expired key); their marks go.
    RevokeMany(Vec<ApiKey>),
    /// Rotate this key, the old one working for `grace_seconds`.
    Rotate {
        key: ApiKey,
        grace_seconds: u32,
    },
    /// Keep a key whose secret was lost (the orphan question's no).
    KeepOrphan(ApiKey),
    /// Remove this webhook endpoint (by id).
    RemoveWebhook(String),
    /// Give this webhook endpoint (by id) a new signing secret.
    RotateWebhookSecret(String),
    /// Replace the organisation's policy with this one (the policy screen waits).
    SavePolicy(Policy),
}

/// What a popup may read while it draws: the app's state as of `now`,
/// frozen for the frame.
pub struct Ctx<'a> {
    pub theme: &'a Styles,
    pub now: DateTime<Utc>,
    pub tz: DisplayTz,
    pub policy: &'a Policy,
    /// The scope catalogue, for labels.
    pub scopes: &'a [ScopeInfo],
    /// Every key, as last loaded.
    pub keys: &'a [ApiKey],
    /// How often the table reloads by itself (the help says it).
    pub refresh_every: Duration,
}

impl Ctx<'_> {
    pub fn key_by_id(&self, id: &str) -> Option<&ApiKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// A key's status as of `now`.
    pub fn status_of(&self, key: &ApiKey) -> KeyStatus {
        KeyStatus::derive(key.revoked_at, key.expires_at, self.now)
    }

    /// A key's health badges as of `now`, under the policy.
    pub fn badges_of(&self, key: &ApiKey) -> Badges {
        health::badges(key, self.policy, self.now)
    }
}

impl Popup {
    /// Where this popup sits in the keymap.
    pub fn context(&self) -> Context {
        match self {
            Popup::Details(_) => Context::Details,
            Popup::Help(view) => view.context(),
            Popup::Palette(_) => Context::Palette,
            Popup::Create(_) => Context::Create,
            Popup::CopyOnce(_) => Context::CopyOnce,
            Popup::Audit(view) => view.context(),
            Popup::Webhooks(view) => view.context(),
            Popup::Rotate(_) => Context::Rotate,
            Popup::Confirm(dialog) => dialog.context(),
            Popup::Usage(_) => Context::Usage,
            Popup::Policy(_) => Context::Policy,
        }
    }

    /// What `command` (from `key`, at `now`) does to this popup.
    pub fn on_key(
        &mut self,
        command: Option<Command>,
        key: KeyEvent,
        now: DateTime<Utc>,
        tz: DisplayTz,
    ) -> Intent {
        match self {
            Popup::Help(view) => view.handle(command, key),
            Popup::Palette(palette) => palette.handle(command, key),
            Popup::Details(view) => view.handle(command),
            Popup::Audit(view) => view.on_command(command, key),
            Popup::Webhooks(view) => view.on_command(command, key),
            Popup::Create(form) => form.handle(command, key, now, tz),
            Popup::CopyOnce(modal) => modal.on_command(command),
            Popup::Confirm(dialog) => dialog.handle(command),
            Popup::Rotate(dialog) => dialog.handle(command, key),
            Popup::Usage(screen) => screen.handle(command),
            Popup::Policy(editor) => editor.handle(command, key),
        }
    }

    /// Draws this popup over `screen` (the whole terminal); details and the
    /// audit log cover only `body`, the table's place.
    pub fn draw(&self, frame: &mut Frame, ctx: &Ctx, screen: Rect, body: Rect) {
        match self {
            Popup::Details(view) => {
                if let Some(key) = ctx.key_by_id(&view.id) {
                    details::draw(frame, ctx, view, key, body);
                }
            }
            Popup::Help(view) => help::draw(frame, ctx, view, screen),
            Popup::Palette(palette) => palette::draw(frame, ctx, palette, screen),
            Popup::Create(form) => create::draw(frame, ctx, form, screen),
            Popup::CopyOnce(modal) => copy_once::draw(frame, ctx, modal, screen),
            Popup::Confirm(dialog) => confirm::draw(frame, ctx, dialog, screen),
            Popup::Rotate(dialog) => rotate::draw(frame, ctx, dialog, screen),
            Popup::Audit(view) => audit::draw(frame, ctx, view, body),
            Popup::Usage(screen) => usage::draw_screen(frame, ctx, screen, body),
            Popup::Webhooks(view) => webhooks::draw(frame, ctx, view, body),
            Popup::Policy(editor) => policy::draw(frame, ctx, editor, screen),
        }
    }
}

/// Which of two or more buttons has the focus.
pub fn cycle(index: usize, len: usize, forward: bool) -> usize {
    if forward {
        (index + 1) % len
    } else {
        (index + len - 1) % len
    }
}

/// A rectangle of at most `width`×`height` centred in `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Clears `popup` and the column either side of it within `area`, so that
/// no text of the table underneath runs up to its border.
pub(crate) fn clear_with_margin(frame: &mut Frame, popup: Rect, area: Rect) {
    let x = popup.x.saturating_sub(1).max(area.x);
    let right = (popup.right() + 1).min(area.right());
    let margin = Rect::new(x, popup.y, right - x, popup.height);
    frame.render_widget(ratatui::widgets::Clear, margin);
}

/// A vertical scrollbar on the right column of `track` (a popup's border,
/// or the table's last column) when `total` lines do not fit in `visible`;
/// `position` is the first line shown.
pub(crate) fn scrollbar(
    frame: &mut Frame,
    track: Rect,
    total: usize,
    position: usize,
    visible: usize,
) {
    use ratatui::widgets::{Scrollbar, ScrollbarOrientation, ScrollbarState};
    if total <= visible || track.height == 0 {
        return;
    }
    let mut state = ScrollbarState::new(total.saturating_sub(visible))
        .position(position)
        .viewport_content_length(visible);
    frame.render_stateful_widget(
        Scrollbar::new(ScrollbarOrientation::VerticalRight)
            .begin_symbol(None)
            .end_symbol(None),
        track,
        &mut state,
    );
}

/// `[ Label ]`, reversed when focused.
pub(crate) fn button<'a>(label: &str, focused: bool, theme: &Styles) -> ratatui::text::Span<'a> {
    let text = format!("[ {label} ]");
    if focused {
        ratatui::text::Span::styled(text, theme.selected())
    } else {
        ratatui::text::Span::raw(text)
    }
}

#[cfg(test)]
mod tests {
    /// Popups reach the app only through [`super::Intent`]: none imports it.
    #[test]
    fn no_popup_imports_the_app() {
        let own = include_str!("mod.rs");
        let own = &own[..own.find("#[cfg(test)]").unwrap_or(own.len())];
        for (file, text) in [
            ("mod.rs", own),
            ("audit.rs", include_str!("audit.rs")),
            ("confirm.rs", include_str!("confirm.rs")),
            ("copy_once.rs", include_str!("copy_once.rs")),
            ("create.rs", include_str!("create.rs")),
            ("details.rs", include_str!("details.rs")),
            ("help.rs", include_str!("help.rs")),
            ("palette.rs", include_str!("palette.rs")),
            ("policy.rs", include_str!("policy.rs")),
            ("revoke.rs", include_str!("revoke.rs")),
            ("rotate.rs", include_str!("rotate.rs")),
            ("webhooks.rs", include_str!("webhooks.rs")),
        ] {
            for forbidden in ["app::", "App"] {
                assert!(!text.contains(forbidden), "popup/{file} names {forbidden}");
            }
        }
    }
}
