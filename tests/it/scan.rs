//! `keydeck scan` as a pre-commit hook and CI use it: the built binary on a
//! fixture tree holding real keys (made by a real `keydeck serve`), broken
//! ones, look-alikes, an ignored file and a binary file; its text, JSON and
//! SARIF; its exit codes; standard input; git's staged blobs; `--report`;
//! and the gitleaks rule shipped in `assets/`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::common::cli::{Run, Service, User};

/// `keys create --json` on `service`: the new key's secret.
fn real_key(user: &User, name: &str) -> String {
    let created = user
        .run(&[
            "keys",
            "create",
            "--name",
            name,
            "--scope",
            "sessions:read",
            "--json",
        ])
        .ok()
        .json();
    created["secret"].as_str().expect("a secret").to_owned()
}

/// `secret` with one character of its random part changed: its checksum fails.
fn broken(secret: &str, at: usize) -> String {
    let mut bytes = secret.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

fn sha256_hex(secret: &str) -> String {
    keydeck::key::digest(secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Asserts that no part of any secret's random part is in the run's output.
fn never_shown(run: &Run, secrets: &[String]) {
    for secret in secrets {
        let hidden = &secret[12..];
        assert!(
            !run.stdout.contains(hidden) && !run.stderr.contains(hidden),
            "a secret was printed by keydeck {:?}:\n{}\n{}",
            run.args,
            run.stdout,
            run.stderr
        );
    }
}

/// A finding expected: path, line, column in characters, and the key.
type Expected = (String, usize, usize, String);

/// Three real keys; a tree (`tree/`, in the user's home) where they sit in
/// two text files, and again in an ignored file and a binary file, beside
/// broken and look-alike keys. Returns the keys and the findings expected.
fn fixture(user: &User, service: &Service) -> (Vec<String>, Vec<Expected>) {
    let admin = User::of(service);
    let keys: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|name| real_key(&admin, name))
        .collect();
    let [a, b, c] = [&keys[0], &keys[1], &keys[2]];
    let root = user.home.path().join("tree");
    let config = format!(
        "// settings\n\nlet key = \"{a}\";\n// clé: {b}, again {a}\nlet not = \"{}\";\n",
        broken(a, 20)
    );
    write(&root, "src/config.rs", config.as_bytes());
    write(&root, "deploy/.env", format!("API_KEY={c}\n").as_bytes());
    let fakes = [
        broken(b, 8),
        broken(c, c.len() - 1),
        format!("{a}x"),
        a[..a.len() - 1].to_owned(),
        format!("{}-{}", &b[..20], &b[21..]),
        b.replace("eg_live_", "eg_test_"),
    ];
    write(&root, "fakes.txt", fakes.join("\n").as_bytes());
    write(&root, ".gitignore", b"ignored.log\n");
    write(&root, "ignored.log", format!("{a}\n").as_bytes());
    let mut binary = b"\x7fELF\x00\x01\x02".to_vec();
    binary.extend_from_slice(format!(" {b} ").as_bytes());
    write(&root, "tool.bin", &binary);
    let expected = vec![
        ("tree/deploy/.env".to_owned(), 1, 9, c.clone()),
        ("tree/src/config.rs".to_owned(), 3, 12, a.clone()),
        ("tree/src/config.rs".to_owned(), 4, 9, b.clone()),
        ("tree/src/config.rs".to_owned(), 4, 63, a.clone()),
    ];
    (keys, expected)
}

// Acceptance 1: exactly the real keys in text files that are not ignored, in
// the three formats, with their place, and never the secret.
#[test]
fn scan_reports_exactly_the_real_keys_in_text_json_and_sarif() {
    let service = Service::start();
    let user = User::new();
    let (keys, expected) = fixture(&user, &service);
    let display = |key: &str| key[..12].to_owned();

    let text = user.run(&["scan", "tree"]).code(1);
    let lines: Vec<&str> = text.stdout.lines().collect();
    let wanted: Vec<String> = expected
        .iter()
        .map(|(path, line, column, key)| {
            format!(
                "{path}:{line}:{column}: keydeck API key {}...",
                display(key)
            )
        })
        .collect();
    assert_eq!(lines, wanted, "{}", text.stdout);
    text.stderr_has("4 key(s) found in 2 file(s)");
    never_shown(&text, &keys);

    let json = user.run(&["scan", "--format", "json", "tree"]).code(1);
    let found: Vec<(String, u64, u64, String, String)> = json
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|hit| {
            let s = |f: &str| hit[f].as_str().unwrap().to_owned();
            let n = |f: &str| hit[f].as_u64().unwrap();
            (s("path"), n("line"), n("column"), s("prefix"), s("sha256"))
        })
        .collect();
    let wanted: Vec<_> = expected
        .iter()
        .map(|(path, line, column, key)| {
            let (line, column) = (*line as u64, *column as u64);
            (path.clone(), line, column, display(key), sha256_hex(key))
        })
        .collect();
    assert_eq!(found, wanted);
    never_shown(&json, &keys);

    let sarif = user.run(&["scan", "--format", "sarif", "tree"]).code(1);
    never_shown(&sarif, &keys);
    check_sarif(&sarif.json(), &expected);
}

/// The log deserializes into the SARIF 2.1.0 schema's types (serde-sarif,
/// generated from the schema), and serializes back to the same JSON, so no
/// field is unknown to the schema; then its contents are the findings.
fn check_sarif(log: &Value, expected: &[Expected]) {
    let typed: serde_sarif::sarif::Sarif =
        serde_json::from_value(log.clone()).expect("a SARIF 2.1.0 log");
    assert_eq!(&serde_json::to_value(&typed).unwrap(), log);
    assert_eq!(typed.version, "2.1.0");
    let run = &typed.runs[0];
    assert_eq!(run.tool.driver.name, "keydeck");
    let rules = run.tool.driver.rules.as_ref().expect("rules");
    assert_eq!(rules[0].id, "keydeck-api-key");
    let results = run.results.as_ref().expect("results");
    let found: Vec<(String, i64, i64)> = results
        .iter()
        .map(|r| {
            assert_eq!(r.rule_id.as_deref(), Some("keydeck-api-key"));
            let loc = r.locations.as_ref().unwrap()[0]
                .physical_location
                .as_ref()
                .unwrap();
            let region = loc.region.as_ref().unwrap();
            (
                loc.artifact_location.as_ref().unwrap().uri.clone().unwrap(),
                region.start_line.unwrap(),
                region.start_column.unwrap(),
            )
        })
        .collect();
    let wanted: Vec<(String, i64, i64)> = expected
        .iter()
        .map(|(p, l, c, _)| (p.clone(), *l as i64, *c as i64))
        .collect();
    assert_eq!(found, wanted);
    assert_eq!(log["runs"][0]["columnKind"], "unicodeCodePoints");
}

// Acceptance 1, exit codes: 0 clean, 1 found, 2 usage errors (clap's own
// included) and unreadable paths.
#[test]
fn scan_exits_0_when_clean_1_on_keys_2_on_usage_errors() {
    let user = User::new();
    let key = keydeck::key::SecretFormat::default().generate();
    let root = user.home.path();
    write(root, "clean/a.txt", b"nothing to see: eg_live_ here\n");
    write(root, "dirty/a.txt", key.expose().as_bytes());

    let clean = user.run(&["scan", "clean"]).ok();
    assert_eq!(clean.stdout, "");
    let empty_json = user.run(&["scan", "--format", "json", "clean"]).ok();
    assert_eq!(empty_json.json(), serde_json::json!([]));
    user.run(&["scan", "dirty"]).code(1);
    user.run(&["scan", "--format", "xml", "dirty"]).code(2);
    user.run(&["scan", "--bogus"]).code(2);
    user.run(&["scan", "--staged", "dirty"]).code(2);
    user.run(&["scan", "--prefix", "Not A Prefix", "dirty"])
        .code(2)
        .stderr_has("--prefix");
    user.run(&["scan", "missing"]).code(2).stderr_has("missing");
    // Another deployment's prefix finds none of these keys.
    user.run(&["scan", "--prefix", "acme_", "dirty"]).ok();
    // The other commands keep their usage code.
    user.run(&["keys", "--bogus"]).code(1);
}

// Acceptance 1: standard input, and git's staged blobs (what the next commit
// holds, not the work tree).
#[test]
fn scan_reads_standard_input_and_the_staged_blobs() {
    let service = Service::start();
    let admin = User::of(&service);
    let user = User::new();
    let (staged, unstaged) = (real_key(&admin, "staged"), real_key(&admin, "unstaged"));

    let piped = user.run_with(
        &["scan", "-"],
        &[],
        Some(&format!("log line\n  token={staged}\n")),
    );
    let piped = piped.code(1);
    assert_eq!(
        piped.stdout,
        format!("<stdin>:2:9: keydeck API key {}...\n", &staged[..12])
    );

    let repo = user.home.path();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(repo)
            .env("HOME", repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    user.run(&["scan", "--staged"]).ok();
    write(
        repo,
        "app/settings.py",
        format!("KEY = '{staged}'\n").as_bytes(),
    );
    write(repo, "notes.txt", b"no keys\n");
    git(&["add", "app/settings.py", "notes.txt"]);
    // The work tree no longer holds the staged key; an unstaged file holds another.
    write(repo, "app/settings.py", b"KEY = os.environ['KEY']\n");
    write(repo, "draft.txt", unstaged.as_bytes());
    let run = user.run(&["scan", "--staged"]).code(1);
    assert_eq!(
        run.stdout,
        format!(
            "app/settings.py:1:8: keydeck API key {}...\n",
            &staged[..12]
        )
    );
    never_shown(&run, &[staged, unstaged]);
}

/// What a stand-in for a leak-report endpoint received: each request's
/// `Authorization` header and body.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A tiny HTTP receiver on loopback answering `POST /v1/leaks` as the
/// service's future endpoint will. Not a mock of our service (which has no
/// such endpoint yet): it only captures what the client sends, so that the
/// test can check that digests, and nothing else, leave the machine.
fn leak_receiver() -> (String, Received) {
    use axum::{http::HeaderMap, routing::post, Json, Router};
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    let app = Router::new().route(
        "/v1/leaks",
        post(move |headers: HeaderMap, Json(body): Json<Value>| async move {
            let auth = headers["authorization"].to_str().unwrap().to_owned();
            let count = body["reports"].as_array().map_or(0, Vec::len);
            sink.lock().unwrap().push((auth, body));
            Json(serde_json::json!({
                "accepted": count,
                "matched": [{"id": "key_test", "name": "Deploy bot", "prefix": "eg_live_AbCd", "action": "revoke"}]
            }))
        }),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (base, received)
}

// `--report`: only SHA-256 digests, locations and the source leave the
// machine, with the CLI's usual token; the answer is printed; a service
// without the endpoint gets a clear message and exit 2.
#[test]
fn report_sends_only_digests_and_says_when_the_service_lacks_the_endpoint() {
    let service = Service::start();
    let user = User::new();
    let (keys, expected) = fixture(&user, &service);

    let (base, received) = leak_receiver();
    let reporter = User::new()
        .env("KEYDECK_URL", &base)
        .env("KEYDECK_TOKEN", "kdt_reporter-token");
    let tree = user.home.path().join("tree");
    let run = reporter
        .run(&["scan", "--report", tree.to_str().unwrap()])
        .code(1);
    run.stderr_has("accepted 4 report(s)")
        .stderr_has("eg_live_AbCd... “Deploy bot” (key_test): revoke");
    never_shown(&run, &keys);

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (auth, body) = &received[0];
    assert_eq!(auth, "Bearer kdt_reporter-token");
    let sent = body.to_string();
    for key in &keys {
        assert!(!sent.contains(&key[12..]), "a secret was sent: {sent}");
    }
    let reports = body["reports"].as_array().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let tree = tree.display().to_string();
    let wanted: BTreeSet<(String, String)> = expected
        .iter()
        .map(|(path, line, column, key)| {
            let path = path.replacen("tree", &tree, 1);
            (sha256_hex(key), format!("{path}:{line}:{column}"))
        })
        .collect();
    let got: BTreeSet<(String, String)> = reports
        .iter()
        .map(|r| {
            let fields: BTreeSet<&str> =
                r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            assert_eq!(
                fields,
                BTreeSet::from(["location", "sha256", "source"]),
                "{r}"
            );
            assert_eq!(r["source"], "keydeck-scan");
            let s = |f: &str| r[f].as_str().unwrap().to_owned();
            (s("sha256"), s("location"))
        })
        .collect();
    assert_eq!(got, wanted);

    // The real service takes the reports (its answer is tested in leaks.rs).
    let admin = User::of(&service);
    let taken = admin.run(&["scan", "--report", tree.as_str()]).code(1);
    taken.stderr_has("accepted 4 report(s)");
    never_shown(&taken, &keys);

    // A service without the endpoint (an older keydeck: 404) is named.
    let older = User::new()
        .env("KEYDECK_URL", &no_leak_endpoint())
        .env("KEYDECK_TOKEN", "kdt_reporter-token");
    let refused = older.run(&["scan", "--report", tree.as_str()]).code(2);
    refused
        .stderr_has("this service does not accept leak reports yet (POST /v1/leaks)")
        .stderr_has("4 key(s) found");
    never_shown(&refused, &keys);
}

/// A stand-in for a keydeck from before `POST /v1/leaks`: 404 for everything.
fn no_leak_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, axum::Router::new()).await.unwrap();
        });
    });
    base
}

// A file over --max-file-size (default 50 MiB) is skipped with a note,
// not read and not an error; under the cap it is scanned.
#[test]
fn a_file_over_the_size_cap_is_skipped_with_a_note() {
    let user = User::new();
    let tree = user.home.path().join("big");
    std::fs::create_dir_all(&tree).unwrap();
    let key = keydeck::key::SecretFormat::default().generate();
    let mut text = "x".repeat(2 * 1024 * 1024);
    text.push_str(&format!("\nKEY={}\n", key.expose()));
    std::fs::write(tree.join("dump.sql"), text).unwrap();
    let dir = tree.to_str().unwrap();
    let skipped = user.run(&["scan", "--max-file-size", "1", dir]).code(0);
    skipped.stderr_has("dump.sql: skipped, larger than 1 MiB (--max-file-size)");
    assert_eq!(skipped.stdout, "");
    let found = user.run(&["scan", "--max-file-size", "3", dir]).code(1);
    assert!(
        found.stdout.contains("dump.sql:2:5: keydeck API key"),
        "{}",
        found.stdout
    );
    user.run(&["scan", "--max-file-size", "0", dir]).code(2);
}

// `--staged` with a submodule staged: the submodule (a commit of another
// repository) is not a blob to read, so the scan is clean, not an error.
#[test]
fn staged_skips_a_submodule() {
    let user = User::new();
    let root = user.home.path();
    let git = |dir: &std::path::Path, args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "protocol.file.allow=always",
                "-c",
                "user.email=t@t",
                "-c",
                "user.name=t",
            ])
            .args(args)
            .current_dir(dir)
            .env("HOME", root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    let inner_dir = tempfile::tempdir().unwrap();
    let inner = inner_dir.path().to_path_buf();
    let outer = root.to_path_buf();
    git(&inner, &["init", "-q"]);
    git(&inner, &["commit", "-q", "--allow-empty", "-m", "inner"]);
    git(&outer, &["init", "-q"]);
    git(
        &outer,
        &["submodule", "add", "-q", inner.to_str().unwrap(), "sub"],
    );
    let run = user.run_with(&["scan", "--staged"], &[], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

// The gitleaks rule shipped in assets/: its regex finds a real key and not
// its look-alikes (gitleaks cannot check the checksum: `scan` does).
#[test]
fn the_gitleaks_rule_matches_real_keys_and_not_look_alikes() {
    let rule_file: toml::Table =
        toml::from_str(include_str!("../../assets/gitleaks/keydeck.toml")).unwrap();
    let rule = &rule_file["rules"].as_array().unwrap()[0];
    assert_eq!(rule["id"].as_str(), Some("keydeck-api-key"));
    assert!(rule["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k.as_str() == Some("eg_live_")));
    let regex = regex::Regex::new(rule["regex"].as_str().unwrap()).unwrap();
    let group = rule["secretGroup"].as_integer().unwrap() as usize;

    let key = keydeck::key::SecretFormat::default().generate();
    let key = key.expose();
    for context in ["{}", "API_KEY={}\n", "\"{}\",", "x = '{}'"] {
        let text = context.replace("{}", key);
        let caps = regex.captures(&text).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(&caps[group], key);
    }
    for fake in [
        format!("{key}x"),
        key[..key.len() - 1].to_owned(),
        format!("{}-{}", &key[..20], &key[21..]),
        key.replace("eg_live_", "eg_test_"),
    ] {
        assert!(!regex.is_match(&fake), "{fake}");
    }
}
