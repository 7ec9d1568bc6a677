//! `keydeck scan`: walks files (honouring `.gitignore`), standard input or
//! git's staged blobs, finds this deployment's keys with the domain's
//! [`KeyFinder`], prints where they are (never what they are), and with
//! `--report` hands their SHA-256 digests to the key service.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::finding::Hit;
use super::{output, sarif, CliError, ScanArgs, ScanFormat};
use crate::api::{LeakAnswer, LeakReport, LeakReports};
use crate::client::{Client, ClientError};
use crate::key::leak::{MAX_LOCATION, MAX_REPORTS};
use crate::key::scan::{looks_binary, KeyFinder};

/// No key found.
pub const EXIT_CLEAN: u8 = 0;
/// Keys found (grep's 1: "something matched").
pub const EXIT_FOUND: u8 = 1;
/// A usage error, a path that could not be read, or a report that failed.
pub const EXIT_ERROR: u8 = 2;

/// What `--report` names as the source of its reports.
pub const REPORT_SOURCE: &str = "keydeck-scan";

/// Said when the service has no `POST /v1/leaks`.
pub const NO_LEAK_ENDPOINT: &str = "this service does not accept leak reports yet (POST /v1/leaks)";

/// What a scan found, and how many paths it could not read.
#[derive(Debug, Default)]
pub struct Scan {
    pub hits: Vec<Hit>,
    pub unreadable: usize,
}

impl Scan {
    /// Looks for keys in `text`, read from `path`; binary content is skipped.
    fn text(&mut self, finder: &KeyFinder, path: &str, text: &[u8]) {
        if looks_binary(text) {
            return;
        }
        for found in finder.find_all(text) {
            self.hits.push(Hit {
                path: path.to_owned(),
                line: found.line,
                column: found.column,
                prefix: finder.format().display_prefix(&found.secret),
                sha256: hex(&found.secret.digest()),
            });
        }
    }

    /// Says why a path could not be read (`why` names it), and counts it.
    fn unreadable(&mut self, why: String) {
        eprintln!("keydeck: {}", output::printable(&why));
        self.unreadable += 1;
    }

    /// The reports `--report` sends: digests and locations only (a
    /// location within the service's limits: control characters made `?`,
    /// at most 500 characters, its end kept).
    pub fn reports(&self) -> LeakReports {
        LeakReports {
            reports: self
                .hits
                .iter()
                .map(|hit| LeakReport {
                    sha256: hit.sha256.clone(),
                    location: report_location(&hit.location()),
                    source: REPORT_SOURCE.to_owned(),
                })
                .collect(),
        }
    }

    /// The exit: 1 when keys were found, else 2 when a path could not be read, else 0.
    pub fn verdict(&self) -> Result<(), CliError> {
        let files = {
            let mut paths: Vec<&str> = self.hits.iter().map(|h| h.path.as_str()).collect();
            paths.dedup();
            paths.len()
        };
        match (self.hits.len(), self.unreadable) {
            (0, 0) => Ok(()),
            (0, n) => Err(CliError {
                code: EXIT_ERROR,
                message: format!("{n} path(s) could not be read"),
            }),
            (n, _) => Err(CliError {
                code: EXIT_FOUND,
                message: format!(
                    "{n} key(s) found in {files} file(s): revoke or rotate them \
                     (keydeck keys rotate PREFIX), then remove them from the files and their history"
                ),
            }),
        }
    }
}

/// A location as the service takes it: no control characters, at most
/// [`MAX_LOCATION`] characters (the end kept: `…` then the file and line).
fn report_location(location: &str) -> String {
    let clean: Vec<char> = location
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.len() <= MAX_LOCATION {
        return clean.into_iter().collect();
    }
    let tail = &clean[clean.len() - (MAX_LOCATION - 1)..];
    std::iter::once('…').chain(tail.iter().copied()).collect()
}

/// Whether a file of `len` bytes is over `--max-file-size`; if so, says so
/// on standard error (it is skipped, not an error).
fn too_large(args: &ScanArgs, shown: &str, len: u64) -> bool {
    let over = len > args.max_file_size.saturating_mul(1024 * 1024);
    if over {
        eprintln!(
            "keydeck: {}: skipped, larger than {} MiB (--max-file-size)",
            output::printable(shown),
            args.max_file_size
        );
    }
    over
}

/// Scans what `args` name and prints the findings on standard output in
/// the chosen format. A failure to scan at all is a usage error (exit 2).
pub fn scan(args: &ScanArgs) -> Result<Scan, CliError> {
    let finder = KeyFinder::new(args.prefix.clone());
    let mut scan = Scan::default();
    if args.staged {
        staged(&finder, args, &mut scan)?;
    } else {
        paths(&finder, args, &mut scan);
    }
    let mut out = std::io::stdout().lock();
    print(&scan.hits, args.format, &mut out)
        .and_then(|()| out.flush())
        .map_err(|e| error(format!("cannot write the findings: {e}")))?;
    Ok(scan)
}

fn error(message: String) -> CliError {
    CliError {
        code: EXIT_ERROR,
        message,
    }
}

/// The paths on the command line (`.` when none): `-` is standard input,
/// a directory is walked with `.gitignore`, `.ignore` and git's excludes
/// honoured (also outside a git repository), hidden files included, `.git` not.
fn paths(finder: &KeyFinder, args: &ScanArgs, scan: &mut Scan) {
    let default = [Path::new(".").to_path_buf()];
    let given = if args.paths.is_empty() {
        &default[..]
    } else {
        &args.paths[..]
    };
    for path in given {
        if path.as_os_str() == "-" {
            let mut text = Vec::new();
            let cap = args.max_file_size.saturating_mul(1024 * 1024);
            match std::io::stdin()
                .lock()
                .take(cap.saturating_add(1))
                .read_to_end(&mut text)
            {
                Ok(n) if too_large(args, "<stdin>", n as u64) => {}
                Ok(_) => scan.text(finder, "<stdin>", &text),
                Err(e) => scan.unreadable(format!("<stdin>: {e}")),
            }
            continue;
        }
        let walk = ignore::WalkBuilder::new(path)
            .hidden(false)
            .require_git(false)
            .filter_entry(|entry| entry.file_name() != ".git")
            .sort_by_file_name(OsStr::cmp)
            .build();
        for entry in walk {
            match entry {
                Ok(entry) if entry.file_type().is_some_and(|t| t.is_file()) => {
                    let shown = shown_path(entry.path(), args.paths.is_empty());
                    let len = entry.metadata().map_or(0, |m| m.len());
                    if too_large(args, &shown, len) {
                        continue;
                    }
                    match std::fs::read(entry.path()) {
                        Ok(text) => scan.text(finder, &shown, &text),
                        Err(e) => scan.unreadable(format!("{shown}: {e}")),
                    }
                }
                Ok(_) => {}
                // The walk's errors name their path.
                Err(e) => scan.unreadable(e.to_string()),
            }
        }
    }
}

/// A path as printed: without the `./` of the default `.`, as ripgrep does.
fn shown_path(path: &Path, default_dot: bool) -> String {
    let path = match path.strip_prefix(".") {
        Ok(rest) if default_dot => rest,
        _ => path,
    };
    path.to_string_lossy().into_owned()
}

/// The blobs staged in git, by their paths from the repository's top:
/// what the next commit will hold, whatever the work tree says.
fn staged(finder: &KeyFinder, args: &ScanArgs, scan: &mut Scan) -> Result<(), CliError> {
    let names = git(&[
        OsStr::new("diff"),
        OsStr::new("--cached"),
        OsStr::new("--name-only"),
        OsStr::new("-z"),
        OsStr::new("--diff-filter=ACMR"),
        // A submodule is a commit of another repository, not a blob of this
        // one (`git show :sub` has nothing to show): its own hook scans it.
        OsStr::new("--ignore-submodules=all"),
    ])
    .map_err(|e| error(format!("--staged: {e}")))?;
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let shown = String::from_utf8_lossy(name).into_owned();
        let mut object = b":".to_vec();
        object.extend_from_slice(name);
        match git(&[OsStr::new("show"), OsStr::from_bytes(&object)]) {
            Ok(blob) if too_large(args, &shown, blob.len() as u64) => {}
            Ok(blob) => scan.text(finder, &shown, &blob),
            Err(e) => scan.unreadable(format!("{shown}: {e}")),
        }
    }
    Ok(())
}

/// `git ARGS` in the current directory: its standard output, or why not.
fn git(args: &[&OsStr]) -> Result<Vec<u8>, String> {
    let out = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(format!("git failed: {}", output::printable(why.trim())));
    }
    Ok(out.stdout)
}

/// The findings in `format`.
pub fn print(hits: &[Hit], format: ScanFormat, out: &mut impl Write) -> std::io::Result<()> {
    match format {
        ScanFormat::Text => {
            for hit in hits {
                writeln!(
                    out,
                    "{}: keydeck API key {}",
                    output::printable(&hit.location()),
                    crate::present::prefix(&hit.prefix)
                )?;
            }
            Ok(())
        }
        ScanFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, hits)?;
            writeln!(out)
        }
        ScanFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif::log(hits))?;
            writeln!(out)
        }
    }
}

/// `--report`: the digests go to the service; its answer goes to standard
/// error (standard output holds the findings).
/// Sent in batches of at most [`MAX_REPORTS`], the service's limit per request.
pub async fn report_on(reports: LeakReports, client: &Client) -> Result<(), CliError> {
    let mut answer = LeakAnswer {
        accepted: 0,
        matched: Vec::new(),
    };
    for batch in reports.reports.chunks(MAX_REPORTS) {
        let batch = LeakReports {
            reports: batch.to_vec(),
        };
        match client.report_leaks(&batch).await {
            Ok(part) => {
                answer.accepted += part.accepted;
                answer.matched.extend(part.matched);
            }
            Err(ClientError::NotFound(_)) => return Err(error(NO_LEAK_ENDPOINT.to_owned())),
            Err(e) => {
                let e = CliError::from(e);
                return Err(error(format!("the report failed: {}", e.message)));
            }
        }
    }
    eprintln!("{}", output::printable_lines(&answer_text(&answer)));
    Ok(())
}

/// The service's answer, for people.
fn answer_text(answer: &LeakAnswer) -> String {
    let mut text = format!(
        "Reported: the key service accepted {} report(s).",
        answer.accepted
    );
    for m in &answer.matched {
        text.push_str(&format!(
            "\n  {} “{}” ({}): {}",
            crate::present::prefix(&m.prefix),
            m.name,
            m.id,
            m.action
        ));
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_locations_fit_the_services_limits() {
        assert_eq!(report_location("a.rs:1:2"), "a.rs:1:2");
        assert_eq!(report_location("a\u{1b}b.rs:1:2"), "a?b.rs:1:2");
        let long = format!("{}/deploy.env:3:9", "d".repeat(600));
        let cut = report_location(&long);
        assert_eq!(cut.chars().count(), MAX_LOCATION);
        assert!(
            cut.starts_with('…') && cut.ends_with("/deploy.env:3:9"),
            "{cut}"
        );
    }

    #[test]
    fn hex_is_lowercase_and_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }

    #[test]
    fn the_verdict_is_1_for_keys_else_2_for_unreadable_paths() {
        let hit = Hit {
            path: "a".into(),
            line: 1,
            column: 1,
            prefix: "eg_live_1a2B".into(),
            sha256: "0".repeat(64),
        };
        assert!(Scan::default().verdict().is_ok());
        let unreadable = Scan {
            hits: vec![],
            unreadable: 1,
        };
        assert_eq!(unreadable.verdict().unwrap_err().code, EXIT_ERROR);
        let found = Scan {
            hits: vec![hit.clone(), hit],
            unreadable: 1,
        };
        let e = found.verdict().unwrap_err();
        assert_eq!(e.code, EXIT_FOUND);
        assert!(e.message.contains("2 key(s) found in 1 file(s)"), "{e}");
    }

    #[test]
    fn the_answer_names_each_matched_key_and_its_action() {
        let answer: LeakAnswer = serde_json::from_str(
            r#"{"accepted":2,"matched":[{"id":"key_1","name":"CI","prefix":"eg_live_1a2B","action":"revoke"}]}"#,
        )
        .unwrap();
        let text = answer_text(&answer);
        assert!(text.contains("accepted 2 report(s)"), "{text}");
        assert!(
            text.contains("eg_live_1a2B... “CI” (key_1): revoke"),
            "{text}"
        );
    }
}
