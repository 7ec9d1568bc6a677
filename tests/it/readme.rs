//! The README's curl examples, run as written against a real `keydeck serve`.

use crate::common;

use common::bin::scrub;
use common::process::ServerProcess;
use common::Backend;

/// The shell block after `marker` in README.md.
fn readme_block(marker: &str) -> String {
    let readme = include_str!("../../README.md");
    let after = readme.split(marker).nth(1).expect("marker in README");
    let start = after.find("```sh\n").expect("sh block") + 6;
    let len = after[start..].find("```").expect("block end");
    after[start..start + len].to_owned()
}

#[test]
fn curl_examples_work_as_written() {
    let home = tempfile::tempdir().unwrap();
    let data_dir = home.path().join(".local/share/keydeck");
    let server = ServerProcess::spawn(
        &Backend::sqlite(),
        &data_dir,
        &home.path().join("serve.log"),
    );
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    // Only the port differs from the README: the test's server listens on a free one.
    let script = readme_block("<!-- readme-test: curl -->")
        .replace("localhost:8080", &format!("localhost:{port}"));
    let out = scrub(&mut std::process::Command::new("bash"))
        .args(["-euo", "pipefail", "-c", &script])
        .env("HOME", home.path())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_in_order = [
        "HTTP/1.1 200 OK",
        "x-key-id: key_",
        "x-key-scopes: sessions:read",
        "HTTP/1.1 403 Forbidden",
        "insufficient_scope",
        "\"name\":\"CI/CD Pipeline\"",
        "\"status\":\"revoked\"",
        "HTTP/1.1 401 Unauthorized",
        "www-authenticate: Bearer error=\"invalid_token\"",
    ];
    let mut rest = stdout.as_ref();
    for expected in expected_in_order {
        let at = rest
            .find(expected)
            .unwrap_or_else(|| panic!("{expected:?} not found (in order) in:\n{stdout}"));
        rest = &rest[at + expected.len()..];
    }
    drop(server);
}
