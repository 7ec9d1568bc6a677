//! Names that spoof a listing, and text that drives a terminal: the service
//! refuses hidden characters in key names and descriptions (on SQLite and
//! PostgreSQL), and the client commands never print a server's string raw,
//! even one written straight into the database past every check.

use crate::common;
use crate::common::cli as support;

use common::{error_code, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{Service, User};

/// One character of every refused class, and how the 400 must name it.
const REFUSED: &[(&str, char, &str)] = &[
    ("C0 control", '\u{1}', "U+0001, a control character"),
    ("C0 escape", '\u{1b}', "U+001B ESCAPE"),
    ("DEL", '\u{7f}', "U+007F DELETE"),
    ("C1 control", '\u{9b}', "U+009B CONTROL SEQUENCE INTRODUCER"),
    ("bidi override", '\u{202e}', "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("bidi isolate", '\u{2066}', "U+2066 LEFT-TO-RIGHT ISOLATE"),
    ("zero-width space", '\u{200b}', "U+200B ZERO WIDTH SPACE"),
    (
        "byte order mark",
        '\u{feff}',
        "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    ),
    ("line separator", '\u{2028}', "U+2028 LINE SEPARATOR"),
    (
        "paragraph separator",
        '\u{2029}',
        "U+2029 PARAGRAPH SEPARATOR",
    ),
];

/// A create with `body` as the admin: the 400's field messages.
async fn refused_fields(server: &TestServer, body: Value, what: &str) -> Value {
    let r = server.create_key_as(&server.admin_token, body).await;
    let (status, code, body) = error_code(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(code, "invalid_request", "{what}: {body}");
    body["error"]["fields"].clone()
}

async fn hidden_characters_are_refused_in_names_and_descriptions(backend: Backend) {
    let server = TestServer::start(&backend).await;
    for &(class, c, named) in REFUSED {
        let fields = refused_fields(
            &server,
            json!({ "name": format!("pay{c}roll"), "scopes": ["sessions:read"] }),
            &format!("{class} in the name"),
        )
        .await;
        assert_eq!(
            fields,
            json!({ "name": format!("name must not contain {named} (at character 4)") }),
            "{class} in the name"
        );

        // Newlines and tabs stay allowed in a description; the position counts characters.
        let fields = refused_fields(
            &server,
            json!({
                "name": "Payroll",
                "description": format!("é\tone\ntwo{c}"),
                "scopes": ["sessions:read"],
            }),
            &format!("{class} in the description"),
        )
        .await;
        assert_eq!(
            fields,
            json!({
                "description": format!("description must not contain {named} (at character 10)")
            }),
            "{class} in the description"
        );
    }

    // Nothing was created; a description with newlines and tabs still is.
    let list = server.get_json("/v1/api-keys", &server.admin_token).await;
    assert_eq!(list["data"], json!([]), "{list}");
    let r = server
        .create_key_as(
            &server.admin_token,
            json!({
                "name": "Payroll — 日本 🚀",
                "description": "line one\n\tline two",
                "scopes": ["sessions:read"],
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    server.stop().await;
    backend.cleanup().await;
}

on_both_backends!(hidden_characters_are_refused_in_names_and_descriptions);

#[test]
fn keys_create_refuses_hidden_characters_before_sending() {
    let service = Service::start();
    let user = User::of(&service);
    let run = user
        .run(&[
            "keys",
            "create",
            "--name",
            "invoice\u{202e}fdp.exe",
            "--description",
            "ok\nthen\u{200b}",
            "--scope",
            "sessions:read",
        ])
        .code(1);
    run.stderr_has("--name: name must not contain U+202E RIGHT-TO-LEFT OVERRIDE (at character 8)")
        .stderr_has(
            "--description: description must not contain U+200B ZERO WIDTH SPACE (at character 8)",
        );
    assert!(!run.stderr.contains('\u{202e}'), "{:?}", run.stderr);
    assert!(user.keys(&[]).is_empty(), "nothing was sent");
}

/// Characters that drive a terminal, or reorder what it shows, if printed raw.
const RAW: [char; 4] = ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'];

/// A title change, a screen clear, an OSC 52 clipboard write, a C1 CSI and a bell.
const HOSTILE_NAME: &str = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31mred\u{202e}gnp";
const HOSTILE_DESCRIPTION: &str = "first\u{1b}]52;c;cHduZWQ=\u{7}\nsecond\u{7}\u{9b}2J";
const HOSTILE_ACTOR: &str = "mallory\u{1b}]52;c;cHduZWQ=\u{7}@example.com";
const HOSTILE_ADDR: &str = "10.0.0.1\u{1b}[2J";
const HOSTILE_PREFIX: &str = "eg_live_\u{9b}2J";

/// Runs SQL statements on the service's SQLite file, past every check of the service.
fn write_past_the_service(service: &Service, statements: &[(&str, Vec<String>)]) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&service.backend.database_url())
            .await
            .expect("open the service's SQLite file");
        for (sql, binds) in statements {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(bind.as_str());
            }
            let done = query.execute(&mut conn).await.expect(sql);
            assert!(done.rows_affected() > 0, "{sql}: no row changed");
        }
        conn.close().await.unwrap();
    });
}

fn assert_nothing_raw(what: &str, text: &str) {
    assert!(
        !text.contains(RAW),
        "{what} printed a raw control or bidi character:\n{text:?}"
    );
}

#[test]
fn server_strings_never_reach_the_terminal_raw_but_json_is_exact() {
    let service = Service::start();
    let user = User::of(&service);
    let created = user
        .run(&[
            "keys",
            "create",
            "--name",
            "Payroll",
            "--description",
            "plain",
            "--scope",
            "sessions:read",
            "--json",
        ])
        .ok()
        .json();
    let id = created["api_key"]["id"].as_str().unwrap().to_owned();
    let details = json!({ "name": HOSTILE_NAME, "scopes": ["sessions:read"] }).to_string();
    write_past_the_service(
        &service,
        &[
            (
                "UPDATE api_keys SET name = ?, description = ?, created_by = ?, prefix = ? WHERE id = ?",
                vec![
                    HOSTILE_NAME.into(),
                    HOSTILE_DESCRIPTION.into(),
                    HOSTILE_ACTOR.into(),
                    HOSTILE_PREFIX.into(),
                    id.clone(),
                ],
            ),
            (
                "UPDATE audit_log SET actor_name = ?, remote_addr = ?, details = ? WHERE api_key_id = ?",
                vec![
                    HOSTILE_ACTOR.into(),
                    HOSTILE_ADDR.into(),
                    details,
                    id.clone(),
                ],
            ),
        ],
    );

    // The table, the details and the audit log show every string escaped.
    let list = user.run(&["keys", "list"]).ok();
    assert_nothing_raw("keys list", &list.stdout);
    assert_nothing_raw("keys list (stderr)", &list.stderr);
    let row = list
        .stdout
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no row for {id}:\n{}", list.stdout));
    // Cut to 40 columns, never inside an escape.
    assert!(
        row.contains(r"evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}3…"),
        "{row}"
    );
    assert!(row.contains(r"eg_live_\u{9b}2J..."), "{row}");

    let show = user.run(&["keys", "show", &id]).ok();
    assert_nothing_raw("keys show", &show.stdout);
    for shown in [
        r"Name         evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31mred\u{202e}gnp",
        r"Description  first\u{1b}]52;c;cHduZWQ=\u{7}",
        r"             second\u{7}\u{9b}2J",
        r"by mallory\u{1b}]52;c;cHduZWQ=\u{7}@example.com",
    ] {
        assert!(show.stdout.contains(shown), "{shown} in:\n{}", show.stdout);
    }

    let audit = user.run(&["audit"]).ok();
    assert_nothing_raw("audit", &audit.stdout);
    let row = audit
        .stdout
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no audit row for {id}:\n{}", audit.stdout));
    for shown in [
        r"mallory\u{1b}]52;c;cHduZWQ=\u{7}@exampl…",
        r"10.0.0.1\u{1b}[2J",
        r"name=evil\u{1b}]0;pwned\u{7}",
    ] {
        assert!(row.contains(shown), "{shown} in {row}");
    }

    // Messages on standard error too.
    let revoke = user.run(&["keys", "revoke", &id, "--yes"]).ok();
    assert_nothing_raw("keys revoke", &revoke.stderr);
    revoke.stderr_has(r#"Revoked API key "evil\u{1b}]0;pwned"#);

    // --json keeps the exact strings, in JSON's own escapes.
    let keys = user.keys(&[]);
    let key = support::find(&keys, &id).expect("listed");
    assert_eq!(key["name"], HOSTILE_NAME);
    assert_eq!(key["description"], HOSTILE_DESCRIPTION);
    assert_eq!(key["created_by"], HOSTILE_ACTOR);
    assert_eq!(key["prefix"], HOSTILE_PREFIX);
    let shown = user.run(&["keys", "show", &id, "--json"]).ok();
    assert_nothing_raw("keys show --json", &shown.stdout);
    assert_eq!(shown.json()["name"], HOSTILE_NAME);
    let entries = user.run(&["audit", "--json"]).ok();
    assert_nothing_raw("audit --json", &entries.stdout);
    let created_entry = entries
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["api_key_id"] == id.as_str() && e["action"] == "api_key.created")
        .cloned()
        .expect("the create is audited");
    assert_eq!(created_entry["actor"]["name"], HOSTILE_ACTOR);
    assert_eq!(created_entry["remote_addr"], HOSTILE_ADDR);
    assert_eq!(created_entry["details"]["name"], HOSTILE_NAME);
}
