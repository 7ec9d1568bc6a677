//! The service's transport as clients meet it: slow and idle clients are cut
//! off without holding anyone else up, requests that run out of time get a
//! JSON error, connections are capped; HTTPS with a private CA; and clients
//! that refuse to send a token over plain http:// to another machine.

use crate::common;
use crate::common::cli as support;
use crate::common::transport as wire;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{error_code, Backend, TestServer};
use keydeck::clock::SystemClock;
use keydeck::service::{self, ServiceConfig, TlsFiles};
use reqwest::StatusCode;
use serde_json::json;
use support::User;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::{healthz, read_response, wait_closed, TestPki, PATIENCE};

on_both_backends!(
    slow_headers_are_cut_off_while_others_are_served,
    a_slow_body_gets_408,
    a_request_past_its_deadline_gets_503,
    an_idle_keep_alive_connection_is_closed,
    connections_over_the_cap_are_refused_until_one_closes,
    https_with_a_private_ca,
);

async fn start(backend: &Backend, tweak: impl FnOnce(&mut ServiceConfig)) -> TestServer {
    TestServer::start_with(backend, Arc::new(SystemClock), tweak).await
}

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.running.addr).await.expect("connect")
}

/// A client that sends its request line one byte at a time (slowloris) is
/// disconnected by the header timeout, long before its headers are complete;
/// meanwhile, another client is served as usual.
async fn slow_headers_are_cut_off_while_others_are_served(backend: Backend) {
    let s = start(&backend, |c| {
        c.timeouts.header = Duration::from_secs(2);
        c.timeouts.idle = Duration::from_secs(120);
    })
    .await;
    let request = b"GET /v1/api-keys HTTP/1.1\r\nhost: test\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let sent = Arc::new(AtomicUsize::new(0));
    let mut stream = connect(&s).await;
    let trickle = tokio::spawn({
        let sent = sent.clone();
        async move {
            let mut answer = [0u8; 256];
            for byte in request {
                if stream.write_all(&[*byte]).await.is_err() {
                    return (true, Vec::new());
                }
                sent.fetch_add(1, Ordering::SeqCst);
                // Paced by a read that also notices the close.
                match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut answer))
                    .await
                {
                    Err(_) => continue,
                    Ok(Ok(0) | Err(_)) => return (true, Vec::new()),
                    Ok(Ok(n)) => return (false, answer[..n].to_vec()),
                }
            }
            (false, Vec::new())
        }
    });
    // A few bytes in, the trickling client holds its connection...
    tokio::time::timeout(PATIENCE, async {
        while sent.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the trickle started");
    // ...and an ordinary client is served all the same.
    let r = s.get("/v1/api-keys", &s.admin_token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !trickle.is_finished(),
        "the trickle should still be going while the other client is served"
    );
    let (closed, answer) = tokio::time::timeout(PATIENCE, trickle)
        .await
        .expect("the slow client was cut off")
        .unwrap();
    assert!(
        closed,
        "expected the connection closed, got {:?}",
        String::from_utf8_lossy(&answer)
    );
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        sent < request.len(),
        "closed after {sent} of {} bytes: the headers were never complete",
        request.len()
    );
    s.stop().await;
    backend.cleanup().await;
}

/// A body that stops half-way gets 408 `request_timeout` with the JSON error
/// body, and creates nothing.
async fn a_slow_body_gets_408(backend: Backend) {
    let s = start(&backend, |c| c.timeouts.body = Duration::from_secs(1)).await;
    let body = json!({"name": "slow", "scopes": ["sessions:read"]}).to_string();
    let mut stream = connect(&s).await;
    let head = format!(
        "POST /v1/api-keys HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        s.admin_token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 408, "{response:?}");
    assert_eq!(response.error_code(), "request_timeout");
    assert!(
        response
            .head
            .to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "the usual headers are set: {}",
        response.head
    );
    let keys = s.get_json("/v1/api-keys", &s.admin_token).await;
    assert_eq!(keys["data"], json!([]), "nothing was created");
    // The OpenAPI document lists these answers.
    let doc = s.get_json("/openapi.json", "").await;
    let responses = &doc["paths"]["/v1/api-keys"]["post"]["responses"];
    assert!(responses["408"].is_object(), "{responses}");
    assert!(responses["503"].is_object(), "{responses}");
    assert!(doc["paths"]["/v1/auth"]["get"]["responses"]["503"].is_object());
    s.stop().await;
    backend.cleanup().await;
}

/// A request stuck behind a database lock is cancelled at its deadline and
/// answered 503 `deadline_exceeded`, rather than hanging; the service is fine after.
async fn a_request_past_its_deadline_gets_503(backend: Backend) {
    use sqlx::{Connection, Executor};
    let s = start(&backend, |c| {
        c.timeouts.request = Duration::from_millis(700)
    })
    .await;
    let url = backend.database_url();
    let create = || {
        s.create_key_as(
            &s.admin_token,
            json!({"name": "locked out", "scopes": ["sessions:read"]}),
        )
    };
    // Another connection holds the write lock on the keys.
    if backend.name == "postgres" {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        conn.execute("BEGIN").await.unwrap();
        conn.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let (status, code, _) = error_code(create().await).await;
        assert_eq!((status.as_u16(), code.as_str()), (503, "deadline_exceeded"));
        conn.execute("ROLLBACK").await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        conn.execute("BEGIN IMMEDIATE").await.unwrap();
        let (status, code, _) = error_code(create().await).await;
        assert_eq!((status.as_u16(), code.as_str()), (503, "deadline_exceeded"));
        conn.execute("ROLLBACK").await.unwrap();
    }
    assert_eq!(create().await.status(), StatusCode::CREATED);
    s.stop().await;
    backend.cleanup().await;
}

/// A kept-alive connection serves several requests, then is closed once it
/// has been idle for the idle timeout (well before the header timeout).
async fn an_idle_keep_alive_connection_is_closed(backend: Backend) {
    let s = start(&backend, |c| {
        c.timeouts.idle = Duration::from_secs(1);
        c.timeouts.header = Duration::from_secs(120);
    })
    .await;
    let mut stream = connect(&s).await;
    healthz(&mut stream).await;
    healthz(&mut stream).await;
    wait_closed(&mut stream).await;
    s.stop().await;
    backend.cleanup().await;
}

/// With a cap of 2 and two connections held open, a third is answered 503
/// `too_many_connections` and closed; once one of the two closes, new
/// connections are served again.
async fn connections_over_the_cap_are_refused_until_one_closes(backend: Backend) {
    let s = start(&backend, |c| {
        c.max_connections = 2;
        c.timeouts.idle = Duration::from_secs(120);
    })
    .await;
    let mut first = connect(&s).await;
    let mut second = connect(&s).await;
    // Served, so both are accepted and hold their places.
    healthz(&mut first).await;
    healthz(&mut second).await;
    let mut third = connect(&s).await;
    let refused = read_response(&mut third).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.error_code(), "too_many_connections");
    wait_closed(&mut third).await;
    drop(first);
    // The freed place is taken by the next connection.
    let served = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut next = connect(&s).await;
            next.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
                .await
                .unwrap();
            let r = read_response(&mut next).await;
            if r.status == 200 {
                return;
            }
            assert_eq!(r.status, 503, "{r:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "a new connection is served once one closed");
    healthz(&mut second).await;
    s.stop().await;
    backend.cleanup().await;
}

/// `keydeck serve --tls-cert --tls-key` equivalent: `keys list` (the built
/// binary) and the UI's client work over HTTPS when `SSL_CERT_FILE` names the
/// private CA, and fail with a certificate error (exit 3, no panic) without it.
async fn https_with_a_private_ca(backend: Backend) {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path());
    let s = start(&backend, |c| {
        c.tls = Some(TlsFiles {
            cert: pki.cert.clone(),
            key: pki.key.clone(),
        })
    })
    .await;
    let base = format!("https://127.0.0.1:{}", s.running.addr.port());
    create_key_via_tls(&s, &base, &pki).await;

    let user = User::new()
        .env("KEYDECK_URL", &base)
        .env("KEYDECK_TOKEN", &s.admin_token);
    let ca = pki.ca.to_str().unwrap();
    let with_ca = tokio::task::block_in_place(|| {
        user.run_with(&["keys", "list", "--json"], &[("SSL_CERT_FILE", ca)], None)
    })
    .ok();
    let keys = with_ca.json();
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    assert_eq!(keys[0]["name"], "over tls");

    let without = tokio::task::block_in_place(|| {
        user.run_with(&["keys", "list", "--json"], &[("SSL_CERT_FILE", "")], None)
    })
    .code(3);
    without.stderr_has("certificate");
    assert!(!without.stderr.contains("panicked"), "{}", without.stderr);

    // Plain HTTP to the HTTPS port gets nothing useful.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", s.running.addr))
        .send()
        .await;
    assert!(
        plain.map(|r| r.status() != StatusCode::OK).unwrap_or(true),
        "plain HTTP must not be served on the HTTPS port"
    );
    s.stop().await;
    backend.cleanup().await;
}

/// Creates a key over HTTPS with a client that trusts exactly the test CA.
async fn create_key_via_tls(s: &TestServer, base: &str, pki: &TestPki) {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let r = client
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(&s.admin_token)
        .json(&json!({"name": "over tls", "scopes": ["sessions:read"]}))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// The terminal UI's client (in-process) trusts `SSL_CERT_FILE`, so a
/// service with a private CA works from the UI. The only test here that sets
/// the variable in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_client_trusts_ssl_cert_file() {
    let backend = Backend::sqlite();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path());
    let s = start(&backend, |c| {
        c.tls = Some(TlsFiles {
            cert: pki.cert.clone(),
            key: pki.key.clone(),
        })
    })
    .await;
    let base = format!("https://127.0.0.1:{}", s.running.addr.port());
    create_key_via_tls(&s, &base, &pki).await;
    let token = keydeck::key::Secret::new(s.admin_token.clone());
    std::env::set_var("SSL_CERT_FILE", &pki.ca);
    let client = keydeck::client::Client::new(&base, token.clone()).unwrap();
    std::env::remove_var("SSL_CERT_FILE");
    let keys = client.list_all_keys(None).await.expect("list over HTTPS");
    assert_eq!(
        keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["over tls"]
    );
    // Another CA in SSL_CERT_FILE: the service's certificate is not trusted.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestPki::new(other_dir.path());
    std::env::set_var("SSL_CERT_FILE", &other.ca);
    let client = keydeck::client::Client::new(&base, token).unwrap();
    std::env::remove_var("SSL_CERT_FILE");
    let e = client.list_all_keys(None).await.unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    s.stop().await;
}

/// Unreadable files, a key that is not the certificate's, and one flag
/// without the other: the service does not start, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_stop_the_start_with_a_clear_message() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path());
    let missing = pki_dir.path().join("missing.pem");
    for (cert, key, expected) in [
        (
            &missing,
            &pki.key,
            "cannot read PEM certificates from --tls-cert",
        ),
        (
            &pki.cert,
            &missing,
            "cannot read a PEM private key from --tls-key",
        ),
        (&pki.key, &pki.key, "no -----BEGIN CERTIFICATE----- block"),
        (&pki.cert, &pki.other_key, "cannot be used together"),
    ] {
        let backend = Backend::sqlite();
        let mut config = backend.config();
        config.tls = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
        let e = match service::start_default(config).await {
            Ok(_) => panic!("started with cert {cert:?} and key {key:?}"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(expected), "{expected:?} not in {e:?}");
        assert!(!e.contains("PRIVATE KEY-----"), "no key material: {e}");
    }
    // The command line wants both flags or neither.
    let user = User::new();
    let data = tempfile::tempdir().unwrap();
    let cert = pki.cert.to_str().unwrap();
    let run = tokio::task::block_in_place(|| {
        user.run(&[
            "--data-dir",
            data.path().to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
        ])
    });
    run.code(1).stderr_has("--tls-key");
    let run = tokio::task::block_in_place(|| {
        user.run(&[
            "--data-dir",
            data.path().to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            missing.to_str().unwrap(),
        ])
    });
    run.code(1)
        .stderr_has("cannot read a PEM private key from --tls-key");
}

/// A token is not sent over plain http:// to another machine: the command
/// exits 1 saying to use https://, and never connects (a listener on this
/// machine's own non-loopback address sees nothing). `--allow-insecure-http`
/// or `KEYDECK_ALLOW_INSECURE_HTTP=1` let it through, with a warning.
#[test]
fn plain_http_to_another_machine_is_refused_before_connecting() {
    let user = User::new().env("KEYDECK_TOKEN", "kdt_not_a_real_token");
    // A name that resolves nowhere: the refusal does not depend on the network.
    let run = user.run(&["keys", "list", "--url", "http://keys.example.invalid:1"]);
    run.code(1)
        .stderr_has("use https://")
        .stderr_has("keys.example.invalid");
    // The terminal UI refuses the same way, before it starts.
    user.run(&["--url", "http://keys.example.invalid:1"])
        .code(1)
        .stderr_has("use https://");
    user.run(&["login", "--url", "http://keys.example.invalid"])
        .code(1)
        .stderr_has("use https://");

    let Some(ip) = wire::non_loopback_ip() else {
        eprintln!(
            "\n*** SKIPPED: the no-connection half: this machine has no non-loopback address ***\n"
        );
        return;
    };
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    user.run(&["keys", "list", "--url", &url])
        .code(1)
        .stderr_has("use https://");
    listener.set_nonblocking(true).unwrap();
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the refused command connected"
    );

    // Allowed: it connects, is answered, and warns.
    listener.set_nonblocking(false).unwrap();
    let answer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for _ in 0..2 {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let n = conn.read(&mut request).unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            assert!(request.starts_with("GET /v1/api-keys"), "{request}");
            let body = r#"{"data":[],"next_cursor":null}"#;
            write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    user.run(&[
        "keys",
        "list",
        "--json",
        "--url",
        &url,
        "--allow-insecure-http",
    ])
    .ok()
    .stderr_has("warning: sending the access token over plain http://");
    user.run_with(
        &["keys", "list", "--json", "--url", &url],
        &[("KEYDECK_ALLOW_INSECURE_HTTP", "1")],
        None,
    )
    .ok()
    .stderr_has("warning");
    answer.join().unwrap();
}

/// The `serve` flags reach the service: `--max-connections 1` refuses a
/// second connection, `--idle-timeout 1` closes the first one once idle
/// (long before `--header-timeout 120`), and `--tls-cert`/`--tls-key` serve HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_flags_set_the_limits_and_tls() {
    let serve = wire::Serve::spawn(&[
        "--max-connections",
        "1",
        "--idle-timeout",
        "1",
        "--header-timeout",
        "120",
    ]);
    assert!(serve.base.starts_with("http://"), "{}", serve.base);
    let mut first = TcpStream::connect(serve.addr).await.unwrap();
    healthz(&mut first).await;
    let mut second = TcpStream::connect(serve.addr).await.unwrap();
    let refused = read_response(&mut second).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.error_code(), "too_many_connections");
    wait_closed(&mut first).await;
    drop(serve);

    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(pki_dir.path());
    let serve = wire::Serve::spawn(&[
        "--tls-cert",
        pki.cert.to_str().unwrap(),
        "--tls-key",
        pki.key.to_str().unwrap(),
    ]);
    assert!(serve.base.starts_with("https://"), "{}", serve.base);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let r = client
        .get(format!("https://127.0.0.1:{}/healthz", serve.addr.port()))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(r.status(), StatusCode::OK);
}
