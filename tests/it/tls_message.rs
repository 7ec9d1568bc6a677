//! A self-signed certificate made the common way (`openssl req -x509`, which
//! marks it as a CA) served by `keydeck serve`: the client says that the
//! server's certificate is a CA certificate and how to make a proper one,
//! not rustls' `CaUsedAsEndEntity` and advice to set `SSL_CERT_FILE`.

use crate::common;

use std::path::Path;

use common::cli::User;
use common::transport::Serve;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A self-signed certificate for 127.0.0.1 and localhost, a CA or not, and
/// its key, as PEM files in `dir`: (cert, key).
fn self_signed(dir: &Path, ca: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "keydeck self-signed");
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join(if ca { "ca-cert.pem" } else { "cert.pem" });
    let key_path = dir.join(if ca { "ca-key.pem" } else { "key.pem" });
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    (s(&cert_path), s(&key_path))
}

/// `keys list` against `serve`, trusting `cert` through `SSL_CERT_FILE`.
fn keys_list(serve: &Serve, cert: &str) -> common::cli::Run {
    let user = User::new()
        .env("KEYDECK_URL", &serve.base)
        .env("KEYDECK_TOKEN", &serve.admin_token());
    user.run_with(
        &["keys", "list", "--json"],
        &[("SSL_CERT_FILE", cert)],
        None,
    )
}

#[test]
fn a_ca_certificate_as_the_servers_own_gets_a_message_that_says_so_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), true);
    let serve = Serve::spawn(&["--tls-cert", &cert, "--tls-key", &key]);
    assert!(serve.base.starts_with("https://"), "{}", serve.base);
    let run = keys_list(&serve, &cert).code(3);
    run.stderr_has("the service's certificate is a CA certificate")
        .stderr_has("used as the server's own certificate")
        .stderr_has("-addext basicConstraints=critical,CA:FALSE")
        .stderr_has("SSL_CERT_FILE at cert.pem");
    assert!(
        !run.stderr.contains("OtherError") && !run.stderr.contains("private CA"),
        "{}",
        run.stderr
    );
    // README's HTTPS section gives the same fix.
    let readme = include_str!("../../README.md");
    let https = readme.split("**HTTPS.**").nth(1).unwrap();
    let https = https.split("\n\n**").next().unwrap();
    assert!(
        https.contains("-addext basicConstraints=critical,CA:FALSE"),
        "{https}"
    );

    // The same, made not a CA: trusted through SSL_CERT_FILE, it works.
    let (cert, key) = self_signed(dir.path(), false);
    let serve = Serve::spawn(&["--tls-cert", &cert, "--tls-key", &key]);
    let keys = keys_list(&serve, &cert).ok().json();
    assert_eq!(keys.as_array().map(Vec::len), Some(0), "{keys}");
}
