//! The command line works where the UI works (issue 20): `--data-dir D keys …`
//! on the embedded service over D, keys found by their exact name, scopes
//! given by id, label or short label (a typo gets a suggestion), the URL in
//! every "cannot reach", and organisations by name in `admin users list`.

use crate::common::cli as support;

use serde_json::Value;
use support::{Service, User};

/// `keydeck --data-dir DIR ARGS` for `user`, with no service configured.
fn local(user: &User, dir: &std::path::Path, args: &[&str]) -> support::Run {
    let mut all = vec!["--data-dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    user.run(&all)
}

fn ids(keys: &Value) -> Vec<String> {
    keys.as_array()
        .expect("array")
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn data_dir_commands_run_on_the_embedded_service_like_the_ui() {
    let user = User::new();
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    // A fresh data dir: the first command sets it up (database, admin token).
    assert_eq!(
        local(&user, &fresh, &["keys", "list", "--json"])
            .ok()
            .json(),
        serde_json::json!([])
    );
    assert!(fresh.join("admin-token").exists());
    assert!(fresh.join("keydeck.db").exists());
    let created = local(
        &user,
        &fresh,
        &[
            "keys",
            "create",
            "--name",
            "CLI one",
            "--scope",
            "sessions:read",
            "--json",
        ],
    )
    .ok()
    .json();
    let id = created["api_key"]["id"].as_str().unwrap().to_owned();
    // A later command, a new embedded service: the same database.
    let listed = local(&user, &fresh, &["keys", "list", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&listed), vec![id.clone()]);
    let table = local(&user, &fresh, &["keys", "list"]).ok().stdout;
    assert!(table.contains("CLI one") && table.contains(&id), "{table}");
    let audit = local(&user, &fresh, &["audit", "--json"]).ok().stdout;
    assert!(audit.contains(&id), "the audit log names the key: {audit}");
    local(&user, &fresh, &["policy", "show"]).ok();
    // A lost admin token is repaired, as the UI repairs it.
    std::fs::remove_file(fresh.join("admin-token")).unwrap();
    let listed = local(&user, &fresh, &["keys", "list", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&listed), vec![id]);
    // Without --data-dir nothing is configured: exit 3, saying what to pass.
    user.run(&["keys", "list"])
        .code(3)
        .stderr_has("keydeck login")
        .stderr_has("--data-dir");
}

#[test]
fn data_dir_commands_share_the_database_with_a_running_service() {
    // Another process holds D (here `keydeck serve`, as a UI would): the
    // command opens the same database beside it and sees its keys.
    let service = Service::start();
    let remote = User::of(&service);
    let made = remote
        .run(&[
            "keys",
            "create",
            "--name",
            "Served",
            "--scope",
            "sessions:read",
            "--json",
        ])
        .ok()
        .json();
    let id = made["api_key"]["id"].as_str().unwrap();
    let user = User::new();
    let listed = local(&user, service.data_dir(), &["keys", "list", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&listed), vec![id.to_owned()]);
    let created = local(
        &user,
        service.data_dir(),
        &[
            "keys",
            "create",
            "--name",
            "Local",
            "--scope",
            "sessions:read",
            "--json",
        ],
    )
    .ok()
    .json();
    let local_id = created["api_key"]["id"].as_str().unwrap();
    assert!(
        ids(&remote.run(&["keys", "list", "--json"]).ok().json()).contains(&local_id.to_owned())
    );
    // A configured service still wins over --data-dir, as in the UI.
    let both = remote.run(&[
        "--data-dir",
        "/nonexistent/keydeck",
        "keys",
        "list",
        "--json",
    ]);
    assert_eq!(ids(&both.ok().json()).len(), 2);
}

#[test]
fn keys_show_finds_a_key_by_its_exact_name() {
    let service = Service::start();
    let user = User::of(&service);
    let create = |name: &str| -> String {
        user.run(&[
            "keys",
            "create",
            "--name",
            name,
            "--scope",
            "sessions:read",
            "--json",
        ])
        .ok()
        .json()["api_key"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let one = create("CLI one");
    let twin_a = create("Twin");
    let twin_b = create("Twin");
    create("CLI one more");

    let shown = user.run(&["keys", "show", "CLI one", "--json"]).ok().json();
    assert_eq!(shown["id"], one.as_str());
    let text = user.run(&["keys", "show", "CLI one"]).ok().stdout;
    assert!(text.contains(&one), "{text}");
    // Ids and prefixes keep working.
    assert_eq!(
        user.run(&["keys", "show", &one, "--json"]).ok().json()["name"],
        "CLI one"
    );
    let prefix = shown["prefix"].as_str().unwrap().to_owned();
    assert_eq!(
        user.run(&["keys", "show", &prefix, "--json"]).ok().json()["id"],
        one.as_str()
    );

    // Two keys of one name: both listed, exit 1 (as an ambiguous prefix).
    let twins = user.run(&["keys", "show", "Twin"]).code(1);
    twins
        .stderr_has("matches 2 keys")
        .stderr_has(&twin_a)
        .stderr_has(&twin_b);
    assert_eq!(twins.stdout, "");
    // Not a name (only part of one, or another case): not found, exit 1.
    user.run(&["keys", "show", "CLI"])
        .code(1)
        .stderr_has("exact name");
    user.run(&["keys", "show", "cli one"])
        .code(1)
        .stderr_has("no key matches");
}

#[test]
fn scopes_are_taken_by_id_label_or_short_label_and_typos_get_a_suggestion() {
    let service = Service::start();
    let user = User::of(&service);
    let created = user
        .run(&[
            "keys",
            "create",
            "--name",
            "Aliases",
            "--scope",
            "Sessions (Read)",
            "--scope",
            "sessions:w",
            "--scope",
            "AUDIT_LOGS:READ,Resources:R",
            "--json",
        ])
        .ok()
        .json();
    let mut scopes: Vec<&str> = created["api_key"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    scopes.sort_unstable();
    assert_eq!(
        scopes,
        [
            "audit_logs:read",
            "resources:read",
            "sessions:read",
            "sessions:write"
        ]
    );

    let typo = user
        .run(&[
            "keys",
            "create",
            "--name",
            "Typo",
            "--scope",
            "sesions:read",
        ])
        .code(1);
    typo.stderr_has("--scope: unknown scope 'sesions:read'; did you mean sessions:read?");
    user.run(&[
        "keys",
        "create",
        "--name",
        "Typo",
        "--scope",
        "Sesions (Writ)",
    ])
    .code(1)
    .stderr_has("did you mean sessions:write?");
    user.run(&[
        "keys",
        "create",
        "--name",
        "Typo",
        "--scope",
        "nothing-like-it",
    ])
    .code(1)
    .stderr_has("the scopes are");
    // Nothing was created by the refused attempts.
    assert_eq!(user.keys(&[]).len(), 1);
}

#[test]
fn cannot_reach_names_the_url() {
    let user = User::new().env("KEYDECK_TOKEN", "kdt_anything");
    let url = "http://127.0.0.1:9";
    user.run_with(&["keys", "list"], &[("KEYDECK_URL", url)], None)
        .code(3)
        .stderr_has("cannot reach the key service at http://127.0.0.1:9");
    user.run_with(&["policy", "show"], &[("KEYDECK_URL", url)], None)
        .code(3)
        .stderr_has(url);
}

#[test]
fn admin_users_list_names_the_organisation() {
    let service = Service::start();
    service.admin(&["orgs", "add", "acme"]);
    service.add_user("acme", "ops@acme.test", "admin");
    let list = service.admin(&["users", "list"]);
    let row = |email: &str| {
        list.lines()
            .find(|l| l.contains(email))
            .unwrap_or_else(|| panic!("{email} in:\n{list}"))
            .to_owned()
    };
    assert!(
        row("admin@localhost").trim_end().ends_with(" default"),
        "{list}"
    );
    assert!(row("ops@acme.test").trim_end().ends_with(" acme"), "{list}");
    assert!(!list.contains("org_"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_commands_see_the_uis_keys_and_the_ui_sees_theirs() {
    use crate::common::pty::Session;
    use crate::common::util::admin_token;
    use std::time::Duration;

    let user = User::new();
    let dir = user.home.path().join("data");
    let home = user.home.path().display().to_string();
    let data_dir = dir.display().to_string();
    // The UI on a fresh data dir, so on its embedded service.
    let mut ui = Session::start(&["--data-dir", &data_dir], &[("HOME", &home)], 100, 30);
    ui.wait_for("No API keys yet");
    let base = crate::pty::embedded_url(&dir);
    let made = crate::pty::create_key(&base, &admin_token(&dir), "Made in the UI's service").await;
    // While the UI holds the data dir, the command lists the UI's key ...
    let listed = local(&user, &dir, &["keys", "list", "--json"]).ok().json();
    assert_eq!(
        ids(&listed),
        vec![made["api_key"]["id"].as_str().unwrap().to_owned()]
    );
    // ... and what the command creates shows in the UI.
    local(
        &user,
        &dir,
        &[
            "keys",
            "create",
            "--name",
            "Made by the CLI",
            "--scope",
            "Sessions:R",
        ],
    )
    .ok();
    ui.send("r");
    ui.wait_for("Made by the CLI");
    ui.send("q");
    let (code, _) = ui.wait_exit(Duration::from_secs(10));
    assert_eq!(code, 0);
    let listed = local(&user, &dir, &["keys", "list", "--json"]).ok().json();
    assert_eq!(ids(&listed).len(), 2);
}
