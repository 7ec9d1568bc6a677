//! `keydeck policy show / set` and `keys create` under a policy, run as scripts
//! run them: the built binary against a real `keydeck serve`, exit codes checked.

use crate::common::cli as support;

use serde_json::{json, Value};
use support::{Service, User};

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
        .run(&["policy", "set", "--unused-after", "45", "--json"])
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
        .run(&["policy", "set", "--max-lifetime", "none"])
        .code(2);
    assert_eq!(admin.run(&["policy", "show", "--json"]).ok().json(), set);

    // --max-lifetime none lifts the limit.
    let lifted = admin
        .run(&["policy", "set", "--max-lifetime", "none", "--json"])
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
