//! The scriptable command line (`keydeck keys …`, `audit`, `login`, profiles,
//! completions) as scripts use it: the built binary against a real `keydeck
//! serve`, outputs parsed, exit codes checked.

use crate::common;
use crate::common::cli as support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use common::bin::scrub;
use serde_json::Value;
use support::{auth_status, find, is_secret, Service, User, BIN};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `keys create … --json` as `user`: the API's `{api_key, secret}`.
fn create(user: &User, name: &str, scopes: &[&str]) -> Value {
    let mut args = vec!["keys", "create", "--name", name, "--json"];
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    user.run(&args).ok().json()
}

/// The row of a `keys list` table that holds `needle`.
fn row<'a>(table: &'a str, needle: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle:?} in:\n{table}"))
}

// Acceptance 1: create --json → list → revoke --yes by prefix → list shows it revoked.
#[test]
fn create_list_revoke_by_prefix_round_trip() {
    let service = Service::start();
    let user = User::of(&service);

    let created = user
        .run(&[
            "keys",
            "create",
            "--name",
            "CI/CD Pipeline",
            "--scope",
            "sessions:write",
            "--scope",
            "sessions:read",
            "--description",
            "GitHub Actions deploy",
            "--expires",
            "30d",
            "--json",
        ])
        .ok()
        .json();
    let key = &created["api_key"];
    let id = key["id"].as_str().unwrap().to_owned();
    let prefix = key["prefix"].as_str().unwrap().to_owned();
    assert!(is_secret(created["secret"].as_str().unwrap()), "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with(&prefix));
    assert_eq!(key["name"], "CI/CD Pipeline");
    assert_eq!(key["description"], "GitHub Actions deploy");
    assert_eq!(
        key["scopes"],
        serde_json::json!(["sessions:read", "sessions:write"])
    );
    assert_eq!(key["status"], "active");
    let expires: DateTime<Utc> = key["expires_at"].as_str().unwrap().parse().unwrap();
    let expected = Utc::now() + Duration::days(30);
    assert!((expires - expected).num_seconds().abs() < 120, "{expires}");

    let listed = user.keys(&[]);
    assert_eq!(listed.len(), 1);
    let listed_key = find(&listed, &id).expect("listed");
    assert_eq!(listed_key["status"], "active");
    assert!(listed_key.get("secret").is_none());

    let table = user.run(&["keys", "list"]).ok().stdout;
    let header = table.lines().next().unwrap();
    for column in [
        "NAME",
        "PREFIX",
        "SCOPES",
        "LAST USED",
        "STATUS",
        "CREATED",
        "EXPIRES",
        "ID",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let line = row(&table, &id);
    for cell in [
        "CI/CD Pipeline",
        &format!("{prefix}..."),
        "sessions:read,sessions:write",
        "Never",
        "● Active",
    ] {
        assert!(line.contains(cell), "{cell:?} in {line:?}");
    }
    assert!(!table.contains('\x1b'), "colour on a pipe: {table:?}");

    // Revoke by the prefix as the table shows it.
    let revoked = user
        .run(&["keys", "revoke", &format!("{prefix}..."), "--yes"])
        .ok();
    assert_eq!(revoked.stdout, "");
    revoked.stderr_has("Revoked").stderr_has(&prefix);

    let listed = user.keys(&[]);
    let listed_key = find(&listed, &id).expect("still listed");
    assert_eq!(listed_key["status"], "revoked");
    assert!(listed_key["revoked_at"].is_string());
    let table = user
        .run(&["keys", "list", "--status", "revoked"])
        .ok()
        .stdout;
    assert!(row(&table, &id).contains("✕ Revoked"), "{table}");
    assert!(find(&user.keys(&["--status", "active"]), &id).is_none());
    assert_eq!(
        auth_status(
            service.url(),
            created["secret"].as_str().unwrap(),
            "sessions:read"
        ),
        401
    );

    // The audit log has both, newest first, for machines and for people.
    let audit = user.run(&["audit", "--json"]).ok().json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["api_key_id"] == id.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_key.revoked", "api_key.created"]);
    let table = user.run(&["audit"]).ok().stdout;
    assert!(row(&table, "api_key.revoked").contains(&id), "{table}");
}

// Issue 20: `keydeck audit` names the key of a revoke row as the TUI's audit
// log does (its name, with its prefix), not only by its id; the id stays in
// a column of its own, and --json is unchanged.
#[test]
fn the_cli_audit_names_the_key_of_a_revoke_row() {
    let service = Service::start();
    let user = User::of(&service);
    let created = create(&user, "Billing sync", &["sessions:read"]);
    let id = created["api_key"]["id"].as_str().unwrap().to_owned();
    let prefix = created["api_key"]["prefix"].as_str().unwrap().to_owned();
    user.run(&["keys", "revoke", &id, "--yes"]).ok();

    let table = user.run(&["audit"]).ok().stdout;
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("KEY/USER") && header.contains("KEY ID"),
        "{header}"
    );
    for action in ["api_key.revoked", "api_key.created"] {
        let line = row(&table, action);
        assert!(
            line.contains(&format!("“Billing sync” {prefix}…")),
            "{line}"
        );
        assert!(line.contains(&id), "{line}");
    }
    let audit = user.run(&["audit", "--json"]).ok().json();
    assert_eq!(audit[0]["action"], "api_key.revoked");
    assert_eq!(audit[0]["api_key_id"], id.as_str());
    assert!(audit[0].get("name").is_none(), "{}", audit[0]);
}

// Acceptance 2: `create` prints only the secret on stdout, and the secret authenticates.
#[test]
fn create_prints_only_the_secret_which_authenticates() {
    let service = Service::start();
    let user = User::of(&service);
    let run = user
        .run(&[
            "keys",
            "create",
            "--name",
            "Nightly export",
            "--scope",
            "resources:read",
            "--expires",
            "7d",
        ])
        .ok();
    let secret = run.stdout.strip_suffix('\n').expect("one line");
    assert!(
        is_secret(secret),
        "stdout is not just a secret: {:?}",
        run.stdout
    );
    assert!(!run.stderr.contains(secret), "the secret leaked to stderr");
    run.stderr_has("Nightly export")
        .stderr_has("it will not be shown again");
    assert_eq!(auth_status(service.url(), secret, "resources:read"), 200);
    assert_eq!(auth_status(service.url(), secret, "sessions:write"), 403);
    // Never shown again: not by list, show or audit.
    for args in [
        &["keys", "list", "--json"][..],
        &["keys", "list"],
        &["keys", "show", &secret[..12]],
        &["audit", "--json"],
    ] {
        assert!(!user.run(args).ok().stdout.contains(secret), "{args:?}");
    }
}

#[test]
fn rotate_prints_only_the_new_secret_and_honours_the_grace() {
    let service = Service::start();
    let user = User::of(&service);
    let created = create(&user, "Rotated", &["sessions:read"]);
    let old = created["secret"].as_str().unwrap();

    let run = user
        .run(&["keys", "rotate", &old[..12], "--grace", "1h", "--yes"])
        .ok();
    let new = run.stdout.strip_suffix('\n').unwrap();
    assert!(is_secret(new) && new != old, "{:?}", run.stdout);
    assert!(!run.stderr.contains(new));
    assert_eq!(auth_status(service.url(), new, "sessions:read"), 200);
    assert_eq!(
        auth_status(service.url(), old, "sessions:read"),
        200,
        "grace"
    );

    let old_key = find(&user.keys(&[]), created["api_key"]["id"].as_str().unwrap())
        .unwrap()
        .clone();
    let until: DateTime<Utc> = old_key["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        ((until - Utc::now()) - Duration::hours(1))
            .num_seconds()
            .abs()
            < 120
    );

    // Without grace the old key stops at once; --json gives the whole answer.
    let rotated = user
        .run(&["keys", "rotate", &new[..12], "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(rotated["previous"]["status"], "revoked");
    assert!(is_secret(rotated["secret"].as_str().unwrap()));
    assert_eq!(auth_status(service.url(), new, "sessions:read"), 401);

    // A grace beyond 24 h is a usage error naming the flag.
    user.run(&["keys", "rotate", &old[..12], "--grace", "25h", "--yes"])
        .code(1)
        .stderr_has("--grace");
}

// Issue 20: `--grace` offers the TUI's choices (one list in `present`), says
// so in its help, and takes any other span up to 24h, as the TUI's "other"
// field does.
#[test]
fn grace_offers_the_tuis_choices_and_any_span_up_to_a_day() {
    use keydeck::present::GRACE_CHOICES;
    let service = Service::start();
    let user = User::of(&service);
    let help = user.run(&["keys", "rotate", "--help"]).ok().stdout;
    let grace = help
        .lines()
        .skip_while(|l| !l.contains("--grace"))
        .take(3)
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    for choice in GRACE_CHOICES {
        assert!(grace.contains(choice.span), "{} in {grace}", choice.span);
    }
    assert!(
        grace.contains("any span up to 24h, like 30m or 2h"),
        "{grace}"
    );

    for (span, minutes) in [("2h", 120), ("30m", 30)] {
        let created = create(&user, &format!("Grace {span}"), &["sessions:read"]);
        let id = created["api_key"]["id"].as_str().unwrap();
        let rotated = user
            .run(&["keys", "rotate", id, "--grace", span, "--yes", "--json"])
            .ok()
            .json();
        let until: DateTime<Utc> = rotated["previous"]["expires_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let off = (until - Utc::now()) - Duration::minutes(minutes);
        assert!(off.num_seconds().abs() < 120, "{span}: {until}");
    }
    let created = create(&user, "Grace bad", &["sessions:read"]);
    let id = created["api_key"]["id"].as_str().unwrap();
    user.run(&["keys", "rotate", id, "--grace", "soon", "--yes"])
        .code(1)
        .stderr_has("is not a grace period: use 0, 1h, 24h, or any span up to 24h");
}

// Acceptance 3: every exit code, each produced for real.
#[test]
fn every_exit_code_for_real() {
    let service = Service::start();
    let user = User::of(&service);

    // 0
    user.run(&["keys", "list"]).ok();

    // 1: invalid input, named by its flag; nothing created.
    user.run(&["keys", "create", "--name", "x", "--scope", "sessions:nope"])
        .code(1)
        .stderr_has("--scope")
        .stderr_has("sessions:nope");
    user.run(&[
        "keys",
        "create",
        "--name",
        "x",
        "--scope",
        "sessions:read",
        "--expires",
        "someday",
    ])
    .code(1)
    .stderr_has("--expires");
    let long = "n".repeat(101);
    user.run(&[
        "keys",
        "create",
        "--name",
        &long,
        "--scope",
        "sessions:read",
    ])
    .code(1)
    .stderr_has("--name");
    // 1: usage errors from the parser too (clap's own code would be 2).
    user.run(&["keys", "create", "--scope", "sessions:read"])
        .code(1)
        .stderr_has("--name");
    user.run(&["keys", "list", "--status", "lost"]).code(1);
    user.run(&["keys", "show", "eg_live_zzzz"])
        .code(1)
        .stderr_has("no key matches");
    assert!(user.keys(&[]).is_empty(), "a failed create created a key");

    // 2: a bad token, a member (not an admin), an admin on the free plan.
    user.run_with(
        &["keys", "list"],
        &[("KEYDECK_TOKEN", "kdt_not_a_real_token")],
        None,
    )
    .code(2)
    .stderr_has("refused");
    let member = service.add_user("default", "member@default.test", "member");
    user.run_with(&["keys", "list"], &[("KEYDECK_TOKEN", &member)], None)
        .code(2)
        .stderr_has("Only admins");
    service.admin(&["orgs", "add", "freebies", "--plan", "free"]);
    let free_admin = service.add_user("freebies", "admin@freebies.test", "admin");
    user.run_with(
        &["keys", "create", "--name", "x", "--scope", "sessions:read"],
        &[("KEYDECK_TOKEN", &free_admin)],
        None,
    )
    .code(2)
    .stderr_has("Paid plan only");

    // 3: nothing configured; a stopped server.
    User::new()
        .run(&["keys", "list"])
        .code(3)
        .stderr_has("keydeck login");
    let doomed = Service::start();
    let url = doomed.url().to_owned();
    let Service {
        server, backend, ..
    } = doomed;
    assert!(server.terminate().success());
    user.run_with(&["keys", "list"], &[("KEYDECK_URL", &url)], None)
        .code(3)
        .stderr_has("cannot reach");
    drop(backend);
}

// Acceptance 4: revoke without --yes off a terminal refuses; an ambiguous prefix changes nothing.
#[test]
fn revoke_without_yes_off_a_terminal_changes_nothing() {
    let service = Service::start();
    let user = User::of(&service);
    let created = create(&user, "Keep me", &["sessions:read"]);
    let secret = created["secret"].as_str().unwrap();
    let prefix = &secret[..12];

    user.run(&["keys", "revoke", prefix])
        .code(1)
        .stderr_has("not a terminal")
        .stderr_has("--yes");
    // Not even when something is piped in that looks like consent.
    user.run_with(&["keys", "revoke", prefix], &[], Some("y\n"))
        .code(1)
        .stderr_has("--yes");
    user.run(&["keys", "rotate", prefix])
        .code(1)
        .stderr_has("--yes");

    let keys = user.keys(&[]);
    assert_eq!(keys.len(), 1, "rotate made a key: {keys:?}");
    assert_eq!(keys[0]["status"], "active");
    assert_eq!(auth_status(service.url(), secret, "sessions:read"), 200);
}

#[test]
fn an_ambiguous_prefix_changes_nothing() {
    let service = Service::start();
    let user = User::of(&service);
    // eg_live_ and one more character: 62 possibilities, so 63 keys surely share one.
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    let shared = (0..63)
        .find_map(|i| {
            let created = create(&user, &format!("key {i}"), &["sessions:read"]);
            let prefix = created["api_key"]["prefix"].as_str().unwrap().to_owned();
            let short = prefix[..9].to_owned();
            seen.insert(short.clone(), prefix.clone())
                .map(|other| (short, other, prefix))
        })
        .expect("two keys share eg_live_ and a character");
    let (short, first, second) = shared;
    let before = user.keys(&[]);

    let run = user.run(&["keys", "revoke", &short, "--yes"]).code(1);
    run.stderr_has("nothing was changed")
        .stderr_has(&first)
        .stderr_has(&second);
    user.run(&["keys", "rotate", &short, "--yes"])
        .code(1)
        .stderr_has("nothing was changed");

    let after = user.keys(&[]);
    assert_eq!(after, before, "an ambiguous prefix changed something");
    assert!(after.iter().all(|k| k["status"] == "active"));
    // The full prefix still picks one.
    user.run(&["keys", "revoke", &first, "--yes"]).ok();
    assert_eq!(user.keys(&["--status", "revoked"]).len(), 1);
}

// Acceptance 5: profiles, environment overrides, permissions, login.
fn login(user: &User, profile: Option<&str>, url: &str, token: &str) -> support::Run {
    let mut args = vec!["login", "--url", url, "--token-stdin"];
    if let Some(p) = profile {
        args.extend(["--profile", p]);
    }
    user.run_with(&args, &[], Some(&format!("{token}\n")))
}

fn names(keys: &[Value]) -> Vec<&str> {
    keys.iter().map(|k| k["name"].as_str().unwrap()).collect()
}

#[test]
fn two_profiles_select_their_own_service() {
    let (a, b) = (Service::start(), Service::start());
    let user = User::new();
    login(&user, Some("alpha"), a.url(), &a.token).ok();
    login(&user, Some("beta"), b.url(), &b.token).ok();
    assert_eq!(mode(&user.config()), 0o600);
    assert_eq!(mode(user.config().parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(user.config()).unwrap();
    assert!(
        text.contains("[profiles.alpha]") && text.contains("[profiles.beta]"),
        "{text}"
    );
    assert!(
        text.contains("default_profile = \"alpha\""),
        "the first login is the default: {text}"
    );

    create(&user, "made-on-alpha", &["sessions:read"]); // the default profile
    user.run_with(
        &[
            "keys",
            "create",
            "--name",
            "made-on-beta",
            "--scope",
            "sessions:read",
        ],
        &[("KEYDECK_PROFILE", "beta")],
        None,
    )
    .ok();

    assert_eq!(
        names(&user.keys(&["--profile", "alpha"])),
        ["made-on-alpha"]
    );
    assert_eq!(names(&user.keys(&["--profile", "beta"])), ["made-on-beta"]);
    // The flag wins over the variable.
    let keys = user
        .run_with(
            &["keys", "list", "--json", "--profile", "alpha"],
            &[("KEYDECK_PROFILE", "beta")],
            None,
        )
        .ok()
        .json();
    assert_eq!(keys[0]["name"], "made-on-alpha");
    user.run(&["keys", "list", "--profile", "gamma"])
        .code(1)
        .stderr_has("no profile \"gamma\"");
}

#[test]
fn environment_overrides_the_profile() {
    let (a, b) = (Service::start(), Service::start());
    let user = User::new();
    login(&user, None, a.url(), &a.token).ok();
    create(&user, "on-a", &["sessions:read"]);
    let on_b = User::of(&b);
    create(&on_b, "on-b", &["sessions:read"]);

    // KEYDECK_URL and KEYDECK_TOKEN together replace the profile.
    let keys = user
        .run_with(
            &["keys", "list", "--json"],
            &[("KEYDECK_URL", b.url()), ("KEYDECK_TOKEN", &b.token)],
            None,
        )
        .ok()
        .json();
    assert_eq!(keys[0]["name"], "on-b");
    // --url does too.
    let keys = user
        .run_with(
            &["keys", "list", "--json", "--url", b.url()],
            &[("KEYDECK_TOKEN", &b.token)],
            None,
        )
        .ok()
        .json();
    assert_eq!(keys[0]["name"], "on-b");
    // KEYDECK_TOKEN alone replaces the profile's token.
    user.run_with(&["keys", "list"], &[("KEYDECK_TOKEN", "kdt_wrong")], None)
        .code(2);
    // The profile's token is never sent to another URL.
    user.run_with(&["keys", "list"], &[("KEYDECK_URL", b.url())], None)
        .code(2)
        .stderr_has("only sent to its own URL");
    assert_eq!(names(&user.keys(&[])), ["on-a"]);
}

#[test]
fn a_config_others_can_read_is_refused_with_a_warning() {
    let service = Service::start();
    let user = User::new();
    login(&user, None, service.url(), &service.token).ok();
    user.run(&["keys", "list"]).ok();
    for loose in [0o644, 0o640, 0o604] {
        chmod(&user.config(), loose);
        let run = user.run(&["keys", "list"]).code(1);
        run.stderr_has("warning")
            .stderr_has("chmod 600")
            .stderr_has(&user.config().display().to_string());
        assert!(!run.stderr.contains(&service.token), "the token leaked");
        // login does not write over it either.
        login(&user, None, service.url(), &service.token)
            .code(1)
            .stderr_has("chmod 600");
        assert_eq!(mode(&user.config()), loose);
    }
    chmod(&user.config(), 0o600);
    user.run(&["keys", "list"]).ok();
}

#[test]
fn login_with_a_bad_token_saves_nothing() {
    let service = Service::start();
    let user = User::new();
    login(&user, None, service.url(), "kdt_not_a_real_token")
        .code(2)
        .stderr_has("Nothing was saved");
    assert!(!user.config().exists(), "a refused login wrote the config");
    // Nor a member's token, nor an unreachable service.
    let member = service.add_user("default", "m@default.test", "member");
    login(&user, None, service.url(), &member).code(2);
    login(&user, None, "http://127.0.0.1:9", &service.token).code(3);
    assert!(!user.config().exists());

    // An existing profile is left as it was.
    login(&user, None, service.url(), &service.token).ok();
    let before = std::fs::read(user.config()).unwrap();
    login(&user, None, service.url(), "kdt_not_a_real_token").code(2);
    assert_eq!(std::fs::read(user.config()).unwrap(), before);
    user.run(&["keys", "list"]).ok();

    // No terminal to ask on: the token must come from --token-stdin.
    user.run(&["login", "--url", service.url()])
        .code(1)
        .stderr_has("--token-stdin");
}

#[test]
fn logout_forgets_the_profile() {
    let service = Service::start();
    let user = User::new();
    login(&user, Some("work"), service.url(), &service.token).ok();
    user.run(&["keys", "list"]).ok();
    user.run(&["logout"])
        .ok()
        .stderr_has("removed profile \"work\"");
    let text = std::fs::read_to_string(user.config()).unwrap();
    assert!(
        !text.contains(&service.token) && !text.contains("work"),
        "{text}"
    );
    assert_eq!(mode(&user.config()), 0o600);
    user.run(&["keys", "list"])
        .code(3)
        .stderr_has("keydeck login");
}

#[test]
fn a_token_command_supplies_the_token() {
    let service = Service::start();
    let user = User::new();
    let token_file = user.home.path().join("token");
    std::fs::write(&token_file, format!("{}\n", service.token)).unwrap();
    std::fs::create_dir_all(user.config().parent().unwrap()).unwrap();
    std::fs::write(
        user.config(),
        format!(
            "[profiles.default]\nurl = \"{}\"\ntoken_command = \"cat '{}'\"\n",
            service.url(),
            token_file.display()
        ),
    )
    .unwrap();
    chmod(&user.config(), 0o600);
    create(&user, "via command", &["sessions:read"]);
    assert_eq!(names(&user.keys(&[])), ["via command"]);
}

// Acceptance 6: completions for bash, zsh and fish; bash -n accepts the bash one.
#[test]
fn completions_generate_and_bash_accepts_them() {
    let user = User::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef keydeck"),
        ("fish", "complete -c keydeck"),
    ] {
        let script = user.run(&["completions", shell]).ok().stdout;
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for word in [
            "keys",
            "revoke",
            "rotate",
            "scope",
            "profile",
            "token-stdin",
        ] {
            assert!(script.contains(word), "{shell}: no {word:?}");
        }
    }
    let path = user.home.path().join("keydeck.bash");
    std::fs::write(&path, user.run(&["completions", "bash"]).ok().stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // And it loads and registers the completion.
    let loaded = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("source '{}' && complete -p keydeck", path.display()),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("keydeck"),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    user.run(&["completions", "tcsh"]).code(1);
}

#[test]
fn man_pages_generate() {
    let user = User::new();
    let page = user.run(&["man"]).ok().stdout;
    assert!(page.contains(".TH keydeck 1"), "{page}");
    assert!(page.contains("keys") && page.contains("KEYDECK_URL"));
    let dir = user.home.path().join("man1");
    user.run(&["man", "--dir", dir.to_str().unwrap()]).ok();
    for page in [
        "keydeck.1",
        "keydeck-keys.1",
        "keydeck-keys-revoke.1",
        "keydeck-login.1",
    ] {
        assert!(dir.join(page).exists(), "{page}");
    }
}

#[test]
fn every_command_has_help_with_examples() {
    use clap::CommandFactory;
    fn paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            paths(sub, path, out);
        }
    }
    let mut all = vec![vec![]];
    paths(&keydeck::cli::Cli::command(), vec![], &mut all);
    assert!(all.len() > 20, "{all:?}");
    let user = User::new();
    for path in all {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = user.run(&args).ok();
        assert!(
            run.stdout.contains("Example"),
            "keydeck {args:?} has no examples:\n{}",
            run.stdout
        );
    }
    let version = user.run(&["--version"]).ok();
    assert!(version.stdout.starts_with("keydeck "));
}

// Acceptance 7: the README's "Scripting" examples, run as written.
#[test]
fn readme_scripting_examples_work_as_written() {
    let readme = include_str!("../../README.md");
    let marker = "<!-- readme-test: scripting -->";
    let after = readme.split(marker).nth(1).expect("marker in README");
    let start = after.find("```sh\n").expect("sh block") + 6;
    let len = after[start..].find("```").expect("block end");
    let block = &after[start..start + len];

    let user = User::new();
    let home = user.home.path();
    let data_dir = home.join(".local/share/keydeck");
    let server = common::process::ServerProcess::spawn(
        &common::Backend::sqlite(),
        &data_dir,
        &home.join("serve.log"),
    );
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    // Only the port differs from the README: the test's server listens on a free one.
    let script = block.replace("localhost:8080", &format!("localhost:{port}"));
    assert_ne!(script, block, "the examples name localhost:8080");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = scrub(&mut std::process::Command::new("bash"))
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(home)
        .env("HOME", home)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // In order: the table, the revoked key, the audit log, the exit code of a bad scope.
    let expected_in_order = [
        "NAME",
        "Deploy bot",
        "● Active",
        "Nightly export",
        "● Active",
        "Name         Nightly export",
        "Status       ✕ Revoked",
        "api_key.revoked",
        "api_key.rotated",
        "exit code 1",
    ];
    let mut rest = stdout.as_ref();
    for expected in expected_in_order {
        let at = rest
            .find(expected)
            .unwrap_or_else(|| panic!("{expected:?} not found (in order) in:\n{stdout}\n{stderr}"));
        rest = &rest[at + expected.len()..];
    }

    // The login went to the default config path, private.
    let config = home.join(".config/keydeck/config.toml");
    assert_eq!(mode(&config), 0o600);
    // The files the examples wrote.
    assert!(
        !home.join("deploy-bot.json").exists(),
        "no secret was written to a file"
    );
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("active-keys.json")).unwrap())
            .unwrap();
    assert!(keys
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["status"] == "active"));
    let completion = home.join(".local/share/bash-completion/completions/keydeck");
    assert!(std::fs::read_to_string(completion)
        .unwrap()
        .contains("complete -F"));

    // What the examples left behind, read back through the CLI.
    let after = User::new().env("KEYDECK_URL", &server.base).env(
        "KEYDECK_TOKEN",
        std::fs::read_to_string(data_dir.join("admin-token"))
            .unwrap()
            .trim(),
    );
    let all = after.keys(&[]);
    let by_name =
        |name: &str| -> Vec<&Value> { all.iter().filter(|k| k["name"] == name).collect() };
    let nightly = by_name("Nightly export");
    assert_eq!(nightly.len(), 1);
    assert_eq!(nightly[0]["status"], "revoked");
    // Deploy bot was rotated with an hour's grace: the old key still works for now.
    let deploy_bots = by_name("Deploy bot");
    assert_eq!(deploy_bots.len(), 2, "{deploy_bots:?}");
    assert!(deploy_bots.iter().all(|k| k["status"] == "active"));
    assert!(deploy_bots.iter().any(|k| k["expires_at"].is_string()));
    drop(server);
}

// On a real terminal: the revoke question, colours, and a login whose token is not echoed.
#[test]
fn revoke_asks_on_a_terminal_and_only_yes_revokes() {
    let service = Service::start();
    let user = User::of(&service);
    let created = create(&user, "Asked about", &["sessions:read"]);
    let prefix = created["api_key"]["prefix"].as_str().unwrap().to_owned();
    let question = "[y/N] ";

    let no = user.run_in_terminal(&["keys", "revoke", &prefix], &[], &[(question, "n\r")]);
    assert_eq!(no.code, 1, "{}", no.screen);
    assert!(
        no.screen.contains("Are you sure you want to revoke this API key? Any applications using it will immediately lose access."),
        "{}",
        no.screen
    );
    assert!(no.screen.contains("nothing was changed"), "{}", no.screen);
    assert_eq!(user.keys(&[])[0]["status"], "active");

    let yes = user.run_in_terminal(&["keys", "revoke", &prefix], &[], &[(question, "y\r")]);
    assert_eq!(yes.code, 0, "{}", yes.screen);
    assert_eq!(user.keys(&[])[0]["status"], "revoked");
}

#[test]
fn status_is_coloured_on_a_terminal_unless_no_color() {
    let service = Service::start();
    let user = User::of(&service);
    let created = create(&user, "Coloured", &["sessions:read"]);
    let revoked = create(&user, "Gone", &["sessions:read"]);
    user.run(&[
        "keys",
        "revoke",
        revoked["api_key"]["id"].as_str().unwrap(),
        "--yes",
    ])
    .ok();
    let shown = user.run_in_terminal(&["keys", "list"], &[], &[]);
    assert_eq!(shown.code, 0, "{}", shown.screen);
    assert!(
        shown.screen.contains("\x1b[32m● Active\x1b[0m"),
        "{:?}",
        shown.screen
    );
    assert!(
        shown.screen.contains("\x1b[31m✕ Revoked\x1b[0m"),
        "{:?}",
        shown.screen
    );
    assert!(shown
        .screen
        .contains(created["api_key"]["id"].as_str().unwrap()));

    let plain = user.run_in_terminal(&["keys", "list"], &[("NO_COLOR", "1")], &[]);
    assert_eq!(plain.code, 0);
    assert!(plain.screen.contains("● Active") && plain.screen.contains("✕ Revoked"));
    assert!(!plain.screen.contains('\x1b'), "{:?}", plain.screen);
}

#[test]
fn login_on_a_terminal_asks_and_does_not_echo_the_token() {
    let service = Service::start();
    let user = User::new();
    let url = format!("{}\r", service.url());
    let token = format!("hidden:{}\r", service.token);
    let run = user.run_in_terminal(&["login"], &[], &[("URL: ", &url), ("Token: ", &token)]);
    assert_eq!(run.code, 0, "{}", run.screen);
    assert!(run.screen.contains(service.url()), "the URL is echoed");
    assert!(
        !run.screen.contains(&service.token),
        "the token was echoed:\n{}",
        run.screen
    );
    assert_eq!(mode(&user.config()), 0o600);
    user.run(&["keys", "list"]).ok();
}
