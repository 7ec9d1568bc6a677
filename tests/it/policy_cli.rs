//! `keydeck policy show / set` and `keys create` under a policy, run as scripts
//! run them: the built binary against a real `keydeck serve`, exit codes checked;
//! and `policy set`'s question, off a terminal, on one and over SSH.

use crate::common::cli as support;
use crate::common::{ssh, Backend};

use serde_json::{json, Value};
use support::{Service, User};

on_both_backends!(policy_set_shows_the_changes_and_asks_first_everywhere);

/// `keys create` of a key with `extra` flags, as JSON; exit code 0.
fn create(user: &User, name: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "keys",
        "create",
        "--name",
        name,
        "--scope",
        "sessions:read",
        "--json",
    ];
    args.extend(extra);
    user.run(&args).ok().json()
}

#[test]
fn show_and_set_and_a_dry_run_that_changes_nothing() {
    let service = Service::start();
    let admin = User::of(&service);

    let shown = admin.run(&["policy", "show", "--json"]).ok().json();
    assert_eq!(shown["max_lifetime_days"], Value::Null);
    assert_eq!(shown["rotate_after_days"], 90);
    let table = admin.run(&["policy", "show"]).ok().stdout;
    assert!(table.contains("Max lifetime none"), "{table}");
    assert!(table.contains("Rotate after 90 days"), "{table}");

    // Keys from before: one without expiry or description, one that complies.
    create(
        &admin,
        "Good key",
        &["--expires", "30d", "--description", "nightly export"],
    );
    let forever_prefix = create(&admin, "Forever key", &[])["api_key"]["prefix"]
        .as_str()
        .unwrap()
        .to_owned();

    // A dry run lists the keys that would not comply, and why; nothing changes.
    let dry = admin
        .run(&[
            "policy",
            "set",
            "--max-lifetime",
            "90d",
            "--require-description",
            "--dry-run",
        ])
        .ok();
    dry.stderr_has("1 of 2 active keys would not comply")
        .stderr_has("nothing was changed");
    let row = dry
        .stdout
        .lines()
        .find(|l| l.contains("Forever key"))
        .unwrap_or_else(|| panic!("{}", dry.stdout));
    assert!(row.contains(&format!("{forever_prefix}...")), "{row}");
    assert!(
        row.contains("no expiry, but the policy requires one (at most 90 days)")
            && row.contains("no description, but the policy requires one"),
        "{row}"
    );
    assert!(!dry.stdout.contains("Good key"), "{}", dry.stdout);
    let as_json = admin
        .run(&[
            "policy",
            "set",
            "--max-lifetime",
            "90d",
            "--dry-run",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(as_json.as_array().unwrap().len(), 1, "{as_json}");
    assert_eq!(as_json[0]["name"], "Forever key");
    assert_eq!(
        admin.run(&["policy", "show", "--json"]).ok().json(),
        shown,
        "a dry run changes nothing"
    );

    // Set: flags left out keep their value.
    let set = admin
        .run(&[
            "policy",
            "set",
            "--max-lifetime",
            "90d",
            "--require-description",
            "--rotate-after",
            "60d",
            "--json",
            "--yes",
        ])
        .ok();
    set.stderr_has("Policy updated");
    let set = set.json();
    assert_eq!(
        set,
        json!({"max_lifetime_days": 90, "require_expiry": false, "require_description": true,
               "expiring_within_days": 7, "rotate_after_days": 60, "unused_after_days": 30})
    );
    let set = admin
        .run(&["policy", "set", "--unused-after", "45", "--json", "--yes"])
        .ok()
        .json();
    assert_eq!(set["max_lifetime_days"], 90);
    assert_eq!(set["unused_after_days"], 45);
    assert_eq!(admin.run(&["policy", "show", "--json"]).ok().json(), set);

    // Usage errors: exit 1, naming the flag; nothing sent.
    admin
        .run(&["policy", "set", "--rotate-after", "0d"])
        .code(1)
        .stderr_has("--rotate-after");
    admin
        .run(&["policy", "set", "--max-lifetime", "forever"])
        .code(1)
        .stderr_has("--max-lifetime");
    admin
        .run(&["policy", "set"])
        .code(1)
        .stderr_has("nothing to change");
    admin
        .run(&["policy", "set", "--require-expiry", "--no-require-expiry"])
        .code(1);

    // A member may read the policy but not set it (exit 2: refused).
    let member = User::new().env("KEYDECK_URL", service.url()).env(
        "KEYDECK_TOKEN",
        &service.add_user("default", "m@default.test", "member"),
    );
    assert_eq!(member.run(&["policy", "show", "--json"]).ok().json(), set);
    member
        .run(&["policy", "set", "--max-lifetime", "none", "--yes"])
        .code(2);
    assert_eq!(admin.run(&["policy", "show", "--json"]).ok().json(), set);

    // --max-lifetime none lifts the limit.
    let lifted = admin
        .run(&["policy", "set", "--max-lifetime", "none", "--json", "--yes"])
        .ok()
        .json();
    assert_eq!(lifted["max_lifetime_days"], Value::Null);
}

#[test]
fn a_dry_run_names_the_rule_and_the_numbers() {
    let service = Service::start();
    let admin = User::of(&service);
    create(
        &admin,
        "Long key",
        &["--expires", "150d", "--description", "x"],
    );
    create(
        &admin,
        "Short key",
        &["--expires", "1d", "--description", "x"],
    );
    create(&admin, "Forever key", &[]);
    let dry = admin
        .run(&[
            "policy",
            "set",
            "--max-lifetime",
            "90d",
            "--require-description",
            "--dry-run",
        ])
        .ok();
    dry.stderr_has("2 of 3 active keys would not comply");
    let row = |name: &str| {
        dry.stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name}:\n{}", dry.stdout))
            .to_owned()
    };
    assert!(
        row("Long key").contains("lifetime 150 days > 90"),
        "{}",
        dry.stdout
    );
    let forever = row("Forever key");
    assert!(
        forever.contains("no expiry, but the policy requires one (at most 90 days)")
            && forever.contains("no description, but the policy requires one"),
        "{forever}"
    );
    assert!(!dry.stdout.contains("Short key"), "{}", dry.stdout);

    let why = admin
        .run(&["policy", "set", "--require-expiry", "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(why.as_array().unwrap().len(), 1, "{why}");
    assert_eq!(why[0]["name"], "Forever key");
    assert_eq!(
        why[0]["why"],
        json!(["no expiry, but the policy requires one"])
    );
}

#[test]
fn keys_create_against_a_policy_exits_1_naming_it() {
    let service = Service::start();
    let admin = User::of(&service);
    admin
        .run(&[
            "policy",
            "set",
            "--max-lifetime",
            "30d",
            "--require-description",
            "--yes",
        ])
        .ok();

    let refused = admin
        .run(&[
            "keys",
            "create",
            "--name",
            "too long",
            "--scope",
            "sessions:read",
            "--description",
            "x",
            "--expires",
            "90d",
        ])
        .code(1);
    refused.stderr_has("this organisation requires an expiry of at most 30 days");
    assert!(refused.stdout.is_empty(), "no secret: {}", refused.stdout);
    admin
        .run(&[
            "keys",
            "create",
            "--name",
            "no description",
            "--scope",
            "sessions:read",
            "--expires",
            "7d",
        ])
        .code(1)
        .stderr_has("this organisation requires a description");
    admin
        .run(&[
            "keys",
            "create",
            "--name",
            "no expiry",
            "--scope",
            "sessions:read",
            "--description",
            "x",
        ])
        .code(1)
        .stderr_has("this organisation requires an expiry of at most 30 days");
    let made = create(
        &admin,
        "compliant",
        &["--expires", "30d", "--description", "ok"],
    );
    assert_eq!(made["api_key"]["name"], "compliant");
    let keys = admin.run(&["keys", "list", "--json"]).ok().json();
    assert_eq!(
        keys.as_array().unwrap().len(),
        1,
        "only the compliant key: {keys}"
    );
}

/// `keydeck ARGS` as `user`, from an async test.
fn run(user: &User, args: &[&str]) -> support::Run {
    tokio::task::block_in_place(|| user.run(args))
}

/// `policy set` shows each field that changes (old → new) and asks first:
/// off a terminal without `--yes` it refuses (exit 1) and sends nothing, and
/// so does every command over SSH, with or without a terminal; `--yes`
/// applies at once; on a terminal `n` changes nothing and `y` applies.
async fn policy_set_shows_the_changes_and_asks_first_everywhere(backend: Backend) {
    let server = ssh::start(&backend, |_| {}).await;
    let key = ssh::new_key();
    ssh::add_key(server.running.state.store.as_ref(), "admin@localhost", &key).await;
    let handle = ssh::connect(ssh::addr(&server), &key).await.unwrap();
    let admin = User::new()
        .env("KEYDECK_URL", &server.base)
        .env("KEYDECK_TOKEN", &server.admin_token);
    let token = server.admin_token.clone();
    let policy = || server.get_json("/v1/policy", &token);
    let updates = || async {
        let log = server.get_json("/v1/audit-logs", &token).await;
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "policy.updated")
            .count()
    };
    let before = policy().await;
    assert_eq!(before["rotate_after_days"], 90);

    // A script without --yes: the changes, the refusal, exit 1, nothing sent.
    let refused = run(&admin, &["policy", "set", "--rotate-after", "60d"]).code(1);
    refused
        .stderr_has("Rotate after 90 days → 60 days")
        .stderr_has("refusing to change the policy without confirmation")
        .stderr_has("--yes");
    assert!(refused.stdout.is_empty(), "{refused:?}");
    assert!(!refused.stderr.contains("Policy updated"), "{refused:?}");
    assert_eq!(policy().await, before, "refused: unchanged");

    // Over SSH no one can answer, terminal or not: refused alike.
    for pty in [false, true] {
        let over_ssh = ssh::exec(&handle, "policy set --rotate-after 60d", pty).await;
        assert_eq!(over_ssh.status, Some(1), "pty {pty}: {over_ssh:?}");
        assert!(
            over_ssh.stderr.contains("Rotate after 90 days → 60 days")
                && over_ssh.stderr.contains("without confirmation")
                && over_ssh.stderr.contains("--yes"),
            "pty {pty}: {over_ssh:?}"
        );
        assert!(over_ssh.stdout.is_empty(), "pty {pty}: {over_ssh:?}");
        assert_eq!(policy().await, before, "pty {pty}: unchanged");
    }
    assert_eq!(updates().await, 0, "nothing was sent");

    // --yes: applied, the changes still said; over SSH too.
    let applied = run(
        &admin,
        &["policy", "set", "--rotate-after", "60d", "--yes", "--json"],
    )
    .ok();
    applied
        .stderr_has("Rotate after 90 days → 60 days")
        .stderr_has("Policy updated");
    assert_eq!(applied.json()["rotate_after_days"], 60);
    assert_eq!(policy().await["rotate_after_days"], 60);
    let over_ssh = ssh::exec(&handle, "policy set --unused-after 45d --yes", false).await;
    assert_eq!(over_ssh.status, Some(0), "{over_ssh:?}");
    assert!(
        over_ssh.stderr.contains("Unused after 30 days → 45 days"),
        "{over_ssh:?}"
    );
    assert_eq!(policy().await["unused_after_days"], 45);
    assert_eq!(updates().await, 2);

    // Nothing to change: nothing to ask, nothing sent.
    run(&admin, &["policy", "set", "--rotate-after", "60d"])
        .ok()
        .stderr_has("already is this");
    assert_eq!(updates().await, 2);

    // On a terminal: `n` changes nothing, `y` applies.
    let set = ["policy", "set", "--max-lifetime", "30d"];
    let question = "Apply? [y/N] ";
    let no = tokio::task::block_in_place(|| admin.run_in_terminal(&set, &[], &[(question, "n\r")]));
    assert_eq!(no.code, 1, "{}", no.screen);
    assert!(
        no.screen.contains("Max lifetime none → 30 days")
            && no
                .screen
                .contains("Expiry       optional → required by the max lifetime"),
        "{}",
        no.screen
    );
    assert!(
        no.screen.contains("cancelled; nothing was changed"),
        "{}",
        no.screen
    );
    assert_eq!(policy().await["max_lifetime_days"], Value::Null);
    assert_eq!(updates().await, 2);
    let yes =
        tokio::task::block_in_place(|| admin.run_in_terminal(&set, &[], &[(question, "y\r")]));
    assert_eq!(yes.code, 0, "{}", yes.screen);
    assert!(yes.screen.contains("Policy updated"), "{}", yes.screen);
    let now = policy().await;
    assert_eq!(now["max_lifetime_days"], 30);
    assert_eq!(now["rotate_after_days"], 60, "flags left out kept");
    assert_eq!(updates().await, 3);

    server.stop().await;
    backend.cleanup().await;
}
