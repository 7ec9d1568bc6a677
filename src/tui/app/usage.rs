//! Key usage in the app (issue 22): asked for when the details view or the
//! revoke dialog opens, and handed to them when it comes back.

use super::state::App;
use crate::api::{KeyUsage, UsageWindow};
use crate::client::ClientError;
use crate::tui::action::Request;
use crate::tui::popup::{usage, Popup, Then};

impl App {
    /// The details view of `id` opened: its usage over the first window.
    pub(super) fn request_usage(&mut self, id: String) {
        self.request(Request::LoadKeyUsage {
            id,
            window: usage::DETAILS_WINDOWS[0],
        });
    }

    /// The revoke dialog of one key opened: who still uses it (24 h).
    pub(super) fn ask_revoke_usage(&mut self) {
        let Some(Popup::Confirm(dialog)) = self.popups.last_mut() else {
            return;
        };
        let Some(Then::Revoke(key)) = dialog.yes_then() else {
            return;
        };
        let id = key.id.clone();
        dialog.lines.insert(1, usage::CHECKING.to_owned());
        self.request(Request::LoadKeyUsage {
            id,
            window: UsageWindow::Day,
        });
    }

    /// A key's usage came back: to its details views and its revoke dialog.
    pub(super) fn on_key_usage(
        &mut self,
        id: &str,
        window: UsageWindow,
        result: &Result<KeyUsage, ClientError>,
    ) {
        let now = self.now;
        for popup in &mut self.popups {
            match popup {
                Popup::Details(view) if view.id == id => view.usage.loaded(window, result),
                Popup::Confirm(dialog) if window == UsageWindow::Day => match result {
                    Ok(u) => usage::revoke_line(dialog, id, u, now),
                    Err(_) => usage::revoke_unknown(dialog, id),
                },
                _ => {}
            }
        }
    }
}

impl App {
    /// `u`: the organisation's usage screen, over its first window.
    pub(super) fn open_usage(&mut self) {
        let screen = usage::UsageScreen::default();
        let window = screen.window();
        self.popups.push(Popup::Usage(Box::new(screen)));
        self.request(Request::LoadOrgUsage { window });
    }

    /// A key's details on top (from the usage screen), with its usage.
    pub(super) fn open_details(&mut self, id: String) {
        self.popups.push(Popup::Details(Box::new(
            crate::tui::popup::DetailsView::new(id.clone()),
        )));
        self.request_usage(id);
    }

    /// The organisation's usage came back: to the usage screen.
    pub(super) fn on_org_usage(
        &mut self,
        window: UsageWindow,
        result: &Result<crate::api::OrgUsage, ClientError>,
    ) {
        for popup in &mut self.popups {
            if let Popup::Usage(screen) = popup {
                screen.loaded(window, result);
            }
        }
    }
}
