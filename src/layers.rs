//! The layer rules as data, and the test that greps `src/` and fails on an
//! import that runs against them (see the README's "Architecture").

use std::path::{Path, PathBuf};

/// One layer: the files it covers and what they may not import.
struct Rule {
    /// What the rule says, for the failure message.
    says: &'static str,
    /// Files under these paths (relative to `src/`, a folder ends in `/`;
    /// `""` is every file).
    layer: &'static [&'static str],
    /// Paths (after `crate::`) that these files may not name.
    forbidden: &'static [&'static str],
    /// Paths that stay allowed although a forbidden prefix covers them.
    except: &'static [&'static str],
    /// `Some`: the files may name only these (the domain imports only itself).
    only: Option<&'static [&'static str]>,
    /// Files of the layer not yet held to the rule: the refactor's open
    /// steps (issue 18); each step empties its entry, none may be added.
    pending: &'static [&'static str],
}

/// The domain: pure, I/O-free.
const DOMAIN: &[&str] = &["key/", "clock.rs", "interned.rs", "audit_action.rs"];

const RULES: &[Rule] = &[
    Rule {
        says: "the domain imports only itself",
        layer: DOMAIN,
        forbidden: &[],
        except: &[],
        only: Some(&["key", "clock", "interned", "audit_action"]),
        pending: &[],
    },
    Rule {
        says: "the store never imports the service",
        layer: &["store/"],
        forbidden: &["service"],
        except: &[],
        only: None,
        pending: &[],
    },
    Rule {
        says: "the service never imports a front end, the client or the config",
        layer: &["service/"],
        forbidden: &["client", "config", "cli", "tui", "ssh", "accounts", "run"],
        except: &[],
        only: None,
        pending: &[],
    },
    Rule {
        says: "the TUI never imports the service, the store, the accounts, the config or the CLI",
        layer: &["tui/"],
        forbidden: &[
            "service", "store", "accounts", "config", "cli", "ssh", "run",
        ],
        except: &[],
        only: None,
        pending: &[],
    },
    Rule {
        says: "the CLI never imports the service, the TUI or SSH",
        layer: &["cli/"],
        forbidden: &["service", "tui", "ssh", "run"],
        except: &[],
        only: None,
        pending: &[],
    },
    Rule {
        says: "accounts never print and never import a front end or the service",
        layer: &["accounts/"],
        forbidden: &["service", "cli", "tui", "ssh", "client", "config", "run"],
        except: &[],
        only: None,
        pending: &[],
    },
    Rule {
        says: "the SSH front end reaches the service only through the gate, never the store",
        layer: &["ssh/"],
        forbidden: &["service", "store", "accounts", "config", "run"],
        except: &["service::gate"],
        only: None,
        pending: &[],
    },
    Rule {
        says: "only run/ and main.rs wire: nothing else imports run/",
        layer: &[""],
        forbidden: &["run"],
        except: &[],
        only: None,
        pending: &[],
    },
];

/// What the code of `accounts/` never contains: it returns values and errors,
/// and the front ends print them and read the terminal (checked by
/// [`accounts_never_print_nor_parse_a_command_line`]).
const ACCOUNTS_NEVER: &[&str] = &[
    "print!",
    "println!",
    "eprint!",
    "eprintln!",
    "dbg!",
    "stdout()",
    "stderr()",
    "stdin()",
    "clap",
];

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("read src/").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `service/keycache/mod.rs` → `service::keycache`.
fn module_of(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// One path segment (an identifier, `self` or `*`) at the start of `s`.
fn segment(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '*'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Expands the use tree at the start of `s` (after `crate::` or a resolved
/// `super::`) into full paths under `prefix`: `a::{b, c::d}` → `a::b`, `a::c::d`.
fn expand(s: &str, prefix: &str, out: &mut Vec<String>) {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        let mut depth = 0usize;
        let mut start = 0usize;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&group[start..i], prefix, out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&group[start..i], prefix, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let name = segment(s);
    if name.is_empty() || name == "self" || name == "*" {
        if !prefix.is_empty() {
            out.push(prefix.to_owned());
        }
        return;
    }
    let path = if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}::{name}")
    };
    match s[name.len()..].trim_start().strip_prefix("::") {
        Some(rest) => expand(rest, &path, out),
        None => out.push(path),
    }
}

/// A file's text without its comment lines.
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which of `words` the code (not the comments) of `text` contains.
fn words_in<'a>(text: &str, words: &[&'a str]) -> Vec<&'a str> {
    let code = code_of(text);
    words.iter().copied().filter(|w| code.contains(w)).collect()
}

/// Every crate path a file names: `crate::…` and `super::super::…` escapes
/// (resolved from the file's module). Comment lines are skipped.
fn imports(relative: &str, text: &str) -> Vec<String> {
    let code = code_of(text);
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `keydeck_crate::` or `$crate::` are not ours.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        expand(rest, "", &mut out);
    }
    let module = module_of(relative);
    let mut rest = code.as_str();
    while let Some(at) = rest.find("super::super::") {
        rest = &rest[at..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        let base = module[..module.len().saturating_sub(ups)].join("::");
        expand(rest, &base, &mut out);
    }
    out
}

/// `path` is `prefix` or lies under it.
fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

/// The forbidden imports of every file, as `file: path (rule)`; with
/// `strict`, the pending files too.
fn violations(strict: bool) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .expect("under src/")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).expect("read a source file");
        found.extend(file_violations(&relative, &text, strict));
    }
    found.sort();
    found.dedup();
    found
}

/// The forbidden imports of one file (`relative` to `src/`, its `text`).
fn file_violations(relative: &str, text: &str, strict: bool) -> Vec<String> {
    let paths = imports(relative, text);
    let mut found = Vec::new();
    for rule in RULES {
        let is = |l: &&str| {
            if l.is_empty() || l.ends_with('/') {
                relative.starts_with(l)
            } else {
                relative == *l
            }
        };
        if !rule.layer.iter().any(is) || (!strict && rule.pending.iter().any(is)) {
            continue;
        }
        for path in &paths {
            let excepted = rule.except.iter().any(|e| under(path, e));
            let bad = rule.forbidden.iter().any(|f| under(path, f))
                || rule
                    .only
                    .is_some_and(|only| !only.iter().any(|o| under(path, o)));
            if bad && !excepted {
                found.push(format!("src/{relative}: crate::{path} ({})", rule.says));
            }
        }
    }
    found
}

#[test]
fn the_layer_rules_hold() {
    let found = violations(false);
    assert!(
        found.is_empty(),
        "imports against the layers:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_pending_file_still_breaks_its_rule() {
    // A pending entry that holds is removed, so the rule stays as tight as the code.
    let strict = violations(true);
    for rule in RULES {
        for pending in rule.pending {
            let prefix = format!("src/{pending}");
            assert!(
                strict
                    .iter()
                    .any(|v| v.starts_with(&prefix) && v.contains(rule.says)),
                "{pending} now holds to \"{}\": remove it from `pending`",
                rule.says
            );
        }
    }
}

#[test]
fn the_import_scanner_sees_groups_and_escapes() {
    let text = "use crate::{a::{self, b}, c::D};\n// crate::hidden\nlet x = crate::e::f(1);\nuse super::super::g::H;\n";
    let mut got = imports("x/y/z.rs", text);
    got.sort();
    assert_eq!(got, ["a", "a::b", "c::D", "e::f", "x::g::H"]);
}

#[test]
fn a_forbidden_import_is_caught() {
    // The scanner and the rule matching together, on a made-up file.
    let paths = imports("tui/x.rs", "use crate::service::{store, self};");
    assert!(paths.iter().any(|p| under(p, "service")));
    assert!(!under("services", "service"));
}

#[test]
fn accounts_never_print_nor_parse_a_command_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/accounts");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(!files.is_empty(), "no src/accounts/");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for word in words_in(&text, ACCOUNTS_NEVER) {
            found.push(format!("{}: {word}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "accounts/ prints or parses a command line (the front ends do that):\n{}",
        found.join("\n")
    );
}

#[test]
fn printing_is_seen_in_code_not_in_comments() {
    let text = "// println!(\"fine\")\nuse clap::Parser;\nfn f() { eprintln!(\"x\") }\n";
    assert_eq!(
        words_in(text, ACCOUNTS_NEVER),
        // `println!` is inside `eprintln!`: both are refused anyway.
        ["println!", "eprintln!", "clap"]
    );
    assert!(words_in("fn f() -> u8 { 1 }", ACCOUNTS_NEVER).is_empty());
}

// The database belongs to the store: SQL is written only under `src/store/`,
// and a replica opens one pool (the store's), so nothing else connects.

/// What only `src/store/` may write: SQL query calls, and pools or
/// connections of their own (`PgListener::connect` opens a pool; a listener
/// on the store's pool is `Replicas::listen`).
const STORE_ONLY: &[&str] = &[
    "sqlx::query",
    "query_as",
    "query_scalar",
    "query_with",
    "PoolOptions",
    "PgConnection",
    "SqliteConnection",
    "PgListener::connect",
    "Pool::connect",
    "Pool::connect_with",
];

/// Each `STORE_ONLY` word found in a file outside `src/store/` (but this
/// one, which names them), as `file: word`; comment lines are skipped.
fn database_outside_store() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .expect("under src/")
            .to_string_lossy()
            .replace('\\', "/");
        if relative.starts_with("store/") || relative == "layers.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for word in STORE_ONLY {
            if code_mentions(&text, word) {
                found.push(format!("src/{relative}: {word}"));
            }
        }
    }
    found
}

/// Whether `word` appears in `text` outside comment lines.
fn code_mentions(text: &str, word: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .any(|l| l.contains(word))
}

#[test]
fn no_sql_and_no_pool_outside_the_store() {
    let found = database_outside_store();
    assert!(
        found.is_empty(),
        "SQL or a connection of its own outside src/store/ (use a store method):\n{}",
        found.join("\n")
    );
}

#[test]
fn a_replica_opens_one_pool_per_backend() {
    // Inside the store too: one pool set-up per backend, the dialect's.
    let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut files = Vec::new();
    rust_files(&store, &mut files);
    for options in ["PgPoolOptions::new(", "SqlitePoolOptions::new("] {
        let count: usize = files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("read a store file"))
            .map(|text| {
                text.lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .filter(|l| l.contains(options))
                    .count()
            })
            .sum();
        assert_eq!(count, 1, "{options} in src/store/: one pool per replica");
    }
}

#[test]
fn the_database_scanner_sees_code_and_skips_comments() {
    let text = "// sqlx::query(\"x\")\nlet n: i64 = query_scalar(SQL).fetch_one(&pool).await?;\n";
    assert!(code_mentions(text, "query_scalar"));
    assert!(!code_mentions(text, "sqlx::query"));
}

#[test]
fn the_ssh_front_end_may_name_the_gate_and_nothing_else_of_the_service() {
    let through_gate = "use crate::service::gate::{Gate, Identity};\nuse crate::tui::new_app;";
    assert!(file_violations("ssh/session.rs", through_gate, true).is_empty());
    for bad in [
        "use crate::service::AppState;",
        "use crate::service::{gate::Gate, AppState};",
        "use crate::store::User;",
    ] {
        assert_eq!(
            file_violations("ssh/session.rs", bad, true).len(),
            1,
            "{bad}"
        );
    }
    // And the service may not name the SSH front end, gate or not.
    assert!(!file_violations("service/gate.rs", "use crate::ssh::SshConfig;", true).is_empty());
}
