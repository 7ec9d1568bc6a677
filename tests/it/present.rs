//! One vocabulary (issue 10, acceptance 5): a service with its own scope
//! catalogue (`--scopes-file`) shows its labels in the TUI's table, details and
//! create form and in `keydeck keys list` / `keys show`; and the TUI and the CLI
//! show each status with the same symbol and word.

use crate::common;
use crate::common::cli as support;

use std::sync::Arc;

use chrono::Duration;
use common::{Backend, TestServer};
use crossterm::event::KeyCode;
use keydeck::client::Client;
use keydeck::clock::Clock;
use keydeck::key::{Catalog, KeyStatus, Secret};
use keydeck::present;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use serde_json::json;
use support::User;

/// A deployment's own catalogue: custom labels, one too long for a table cell.
const CATALOGUE: &str = "[[scope]]\nid = \"billing:read\"\nlabel = \"Billing (Read)\"\n\
     [[scope]]\nid = \"billing:write\"\nlabel = \"Billing (Write)\"\n\
     [[scope]]\nid = \"reports:export\"\nlabel = \"Quarterly financial reports export\"\n";

/// What the table shows for the first key's scopes.
const SHORT: &str = "Billing:R, Quarterly financial…";

/// The line of `text` that names `name`.
fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no line for {name:?} in:\n{text}"))
}

/// The status words a line shows, as `present` writes them.
fn statuses_on(line: &str) -> Vec<KeyStatus> {
    [KeyStatus::Active, KeyStatus::Expired, KeyStatus::Revoked]
        .into_iter()
        .filter(|s| line.contains(&present::status_text(*s)))
        .collect()
}

async fn custom_labels_and_statuses_read_the_same_everywhere(backend: Backend) {
    let clock = common::manual_clock(common::ui::start_time());
    let server = TestServer::start_with(&backend, clock.clone(), |c| {
        c.scopes = Catalog::from_toml(CATALOGUE).unwrap();
    })
    .await;
    let expiring = server
        .create_key_as(
            &server.admin_token,
            json!({"name": "Ledger writer", "scopes": ["billing:write"],
                   "expires_at": common::ui::start_time() + Duration::minutes(30)}),
        )
        .await;
    assert_eq!(expiring.status(), 201);
    clock.advance(Duration::minutes(1));
    let (revoked, _) = server.create_key("Old reader", &["billing:read"]).await;
    assert_eq!(
        server
            .revoke(revoked["id"].as_str().unwrap())
            .await
            .status(),
        200
    );
    clock.advance(Duration::minutes(1));
    // Newest, so first in the table and selected.
    let (finance, _) = server
        .create_key("Finance export", &["billing:read", "reports:export"])
        .await;
    let finance = finance["id"].as_str().unwrap().to_owned();
    clock.advance(Duration::hours(1));
    let expected = [
        ("Finance export", KeyStatus::Active),
        ("Ledger writer", KeyStatus::Expired),
        ("Old reader", KeyStatus::Revoked),
    ];

    // The TUI: the table's short labels, the details' full labels, the form's checkboxes.
    let client = Client::new(&server.base, Secret::new(server.admin_token.clone())).unwrap();
    let ui_clock: Arc<dyn Clock> = clock.clone();
    let mut ui = Harness::start(client, ui_clock, Theme { color: false }, 140, 30).await;
    let table = ui.screen();
    assert!(line_of(&table, "Finance export").contains(SHORT), "{table}");
    assert!(
        line_of(&table, "Ledger writer").contains("Billing:W"),
        "{table}"
    );
    for (name, status) in expected {
        assert_eq!(statuses_on(line_of(&table, name)), [status], "{table}");
    }
    ui.press(KeyCode::Enter).await;
    let details = ui.screen();
    for label in [
        "Billing:R · Billing (Read) · billing:read",
        "Quarterly financial… · Quarterly financial reports export · reports:export",
    ] {
        assert!(details.contains(label), "{label} in:\n{details}");
    }
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Char('n')).await;
    let form = ui.screen();
    for (name, label) in [
        ("Billing:R", "Billing (Read)"),
        ("Billing:W", "Billing (Write)"),
        ("Quarterly financial…", "Quarterly financial reports export"),
    ] {
        let line = line_of(&form, &format!("[ ] {name}"));
        assert!(line.contains(label), "{label} in:\n{form}");
    }

    // The CLI, as a script runs it, against the same service.
    let user = User::new()
        .env("KEYDECK_URL", &server.base)
        .env("KEYDECK_TOKEN", &server.admin_token);
    let (list, show) = tokio::task::spawn_blocking(move || {
        let list = user.run(&["keys", "list"]).ok().stdout;
        let show = user.run(&["keys", "show", &finance]).ok().stdout;
        (list, show)
    })
    .await
    .unwrap();
    assert!(line_of(&list, "Finance export").contains(SHORT), "{list}");
    assert!(
        line_of(&list, "Finance export").contains("billing:read,reports:export"),
        "{list}"
    );
    for (name, status) in expected {
        assert_eq!(statuses_on(line_of(&list, name)), [status], "{list}");
        // The very same symbol and word as the TUI's row.
        assert_eq!(
            statuses_on(line_of(&list, name)),
            statuses_on(line_of(&table, name))
        );
    }
    for label in [
        "Scopes       Billing:R · Billing (Read) · billing:read",
        "             Quarterly financial… · Quarterly financial reports export · reports:export",
    ] {
        assert!(show.contains(label), "{label} in:\n{show}");
    }
    server.stop().await;
    backend.cleanup().await;
}

on_both_backends!(custom_labels_and_statuses_read_the_same_everywhere);

/// One name per scope (issue 20): the default catalogue's `Sessions:R` reads
/// the same in the TUI's table, details and form and in `keys list` /
/// `keys show`; the ids stay for machines (the CLI's SCOPES column).
async fn a_scope_has_one_name_in_table_form_details_and_cli(backend: Backend) {
    let clock = common::manual_clock(common::ui::start_time());
    let server = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    let (key, _) = server
        .create_key("Nightly export", &["sessions:read", "resources:read"])
        .await;
    let id = key["id"].as_str().unwrap().to_owned();
    const NAMES: &str = "Sessions:R, Resources:R";

    let client = Client::new(&server.base, Secret::new(server.admin_token.clone())).unwrap();
    let ui_clock: Arc<dyn Clock> = clock.clone();
    let mut ui = Harness::start(client, ui_clock, Theme { color: false }, 140, 30).await;
    let table = ui.screen();
    assert!(line_of(&table, "Nightly export").contains(NAMES), "{table}");
    ui.press(KeyCode::Enter).await;
    let details = ui.screen();
    for line in [
        "Sessions:R · Sessions (Read) · sessions:read",
        "Resources:R · Resources (Read) · resources:read",
    ] {
        assert!(details.contains(line), "{line} in:\n{details}");
    }
    ui.press(KeyCode::Esc).await;
    ui.press(KeyCode::Char('n')).await;
    let form = ui.screen();
    for (name, label) in [
        ("Sessions:R", "Sessions (Read)"),
        ("Resources:R", "Resources (Read)"),
        ("Audit Logs:R", "Audit Logs (Read)"),
        ("Full Access", "Full Access (grants all scopes)"),
    ] {
        let line = line_of(&form, &format!("[ ] {name}"));
        assert!(line.contains(label), "{label} after {name} in:\n{form}");
        assert!(
            !form.contains(&format!("[ ] {label}")),
            "{label} as a name in:\n{form}"
        );
    }

    let user = User::new()
        .env("KEYDECK_URL", &server.base)
        .env("KEYDECK_TOKEN", &server.admin_token);
    let (list, show) = tokio::task::spawn_blocking(move || {
        let list = user.run(&["keys", "list"]).ok().stdout;
        let show = user.run(&["keys", "show", &id]).ok().stdout;
        (list, show)
    })
    .await
    .unwrap();
    let row = line_of(&list, "Nightly export");
    assert!(row.contains(NAMES), "{list}");
    assert!(row.contains("sessions:read,resources:read"), "{list}");
    for line in [
        "Scopes       Sessions:R · Sessions (Read) · sessions:read",
        "             Resources:R · Resources (Read) · resources:read",
    ] {
        assert!(show.contains(line), "{line} in:\n{show}");
    }
    server.stop().await;
    backend.cleanup().await;
}

on_both_backends!(a_scope_has_one_name_in_table_form_details_and_cli);
