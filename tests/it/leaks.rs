//! Leak response (issue 23), on SQLite and PostgreSQL: `POST /v1/leaks` and
//! what each leak policy does to the key (revoke, rotate with its successor,
//! flag), the audit entries, the `exposed` badge first in Attention; a
//! `leaks:report` key that can do nothing else and reaches only its own
//! organisation; GitLab's token revocation API (204, 400, 429, idempotent)
//! and `keydeck scan --report` against a real `keydeck serve`, with no raw
//! token in its database or log; GitHub's signed secret-scanning payload.

use crate::common;

use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::cli::User;
use common::process::ServerProcess;
use common::util::admin_token;
use common::{add_org, error_code, manual_clock, Backend, TestServer};
use keydeck::store::Plan;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

on_both_backends!(
    each_leak_policy_acts_on_the_first_report_only,
    a_rotated_leak_successor_waits_for_its_secret_issued_once,
    a_reporter_key_reports_and_does_nothing_else,
    gitlab_revokes_and_no_raw_token_reaches_the_database_or_log,
    github_signed_matches_are_answered_with_feedback,
    batches_past_16_kib_are_read_up_to_the_leak_limit,
);

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 5, 1, 9, 0, 0).unwrap()
}

fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn post(s: &TestServer, path: &str, token: &str, body: Value) -> reqwest::Response {
    s.http
        .post(s.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn set_policy(s: &TestServer, body: Value) {
    let r = s
        .http
        .put(s.url("/v1/policy"))
        .bearer_auth(&s.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// The audit actions of one key, oldest first.
async fn actions_of(s: &TestServer, id: &str) -> Vec<(String, Value)> {
    let log = s.get_json("/v1/audit-logs?limit=500", &s.admin_token).await;
    let mut out: Vec<(String, Value)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["api_key_id"] == id)
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["details"].clone(),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn each_leak_policy_acts_on_the_first_report_only(backend: Backend) {
    let clock = manual_clock(start());
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;

    // revoke (the default), reported by digest.
    let (revoked, secret_r) = s.create_key("Deploy bot", &["sessions:read"]).await;
    let id_r = revoked["id"].as_str().unwrap();
    let r = post(&s, "/v1/leaks", &s.admin_token, json!({"reports": [
        {"sha256": sha256_hex(&secret_r), "location": "src/deploy.rs:12:9", "source": "keydeck-scan"},
        {"sha256": "ab".repeat(32), "location": "nowhere", "source": "keydeck-scan"},
    ]}))
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(
        answer["matched"],
        json!([{"id": id_r, "name": "Deploy bot", "prefix": revoked["prefix"], "action": "revoke"}])
    );
    assert_eq!(
        s.auth(&secret_r, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let key = s
        .get_json(&format!("/v1/api-keys/{id_r}"), &s.admin_token)
        .await;
    assert_eq!(key["status"], "revoked");
    assert_eq!(
        key["exposure"],
        json!({"at": "2030-05-01T09:00:00Z", "source": "keydeck-scan", "location": "src/deploy.rs:12:9"})
    );
    let actions = actions_of(&s, id_r).await;
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        ["api_key.created", "api_key.exposed", "api_key.revoked"]
    );
    assert_eq!(actions[1].1["location"], "src/deploy.rs:12:9");
    assert_eq!(actions[2].1["reason"], "leaked");

    // rotate: a successor, the leaked key working for the grace, then not.
    set_policy(&s, json!({"on_leak": "rotate", "leak_grace_seconds": 600})).await;
    let (rotated, secret_o) = s.create_key("Billing", &["resources:read"]).await;
    let id_o = rotated["id"].as_str().unwrap();
    clock.advance(Duration::seconds(5));
    let answer: Value = post(
        &s,
        "/v1/leaks",
        &s.admin_token,
        json!({"token": secret_o, "location": "https://ci.example/job/7", "source": "ci-log"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["matched"][0]["action"], "rotate", "{answer}");
    let old = s
        .get_json(&format!("/v1/api-keys/{id_o}"), &s.admin_token)
        .await;
    let successor = old["replaced_by"].as_str().expect("a successor").to_owned();
    assert_eq!(old["expires_at"], "2030-05-01T09:10:05Z");
    let new = s
        .get_json(&format!("/v1/api-keys/{successor}"), &s.admin_token)
        .await;
    assert_eq!(
        (new["name"].clone(), new["replaces"].clone()),
        (json!("Billing"), json!(id_o))
    );
    assert_eq!(new["scopes"], json!(["resources:read"]));
    assert!(new["exposure"].is_null(), "{new}");
    assert_eq!(s.auth(&secret_o, None).await.status(), StatusCode::OK);
    let actions = actions_of(&s, id_o).await;
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        ["api_key.created", "api_key.exposed", "api_key.rotated"]
    );
    assert_eq!(actions[2].1["reason"], "leaked");
    assert_eq!(actions[2].1["new_key_id"], successor.as_str());

    // flag: only marked; it keeps working and heads Attention.
    set_policy(&s, json!({"on_leak": "flag"})).await;
    let (flagged, secret_f) = s.create_key("Search", &["sessions:read"]).await;
    let id_f = flagged["id"].as_str().unwrap();
    clock.advance(Duration::seconds(5));
    let report = json!({"reports": [
        {"token": secret_f, "location": "chat #ops", "source": "slack"},
        {"token": secret_f, "location": "chat #dev", "source": "slack"},
    ]});
    let answer: Value = post(&s, "/v1/leaks", &s.admin_token, report.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["matched"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["matched"][0]["action"], "flag");
    assert_eq!(s.auth(&secret_f, None).await.status(), StatusCode::OK);

    // A repeat changes nothing and writes nothing.
    let again: Value = post(&s, "/v1/leaks", &s.admin_token, report)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["matched"][0]["action"], "already_reported");
    let names: Vec<String> = actions_of(&s, id_f)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(names, ["api_key.created", "api_key.exposed"]);
    let key = s
        .get_json(&format!("/v1/api-keys/{id_f}"), &s.admin_token)
        .await;
    assert_eq!(key["exposure"]["location"], "chat #ops");

    // Attention: the exposed keys first, longest exposed first; the counts.
    let page = s
        .get_json("/v1/api-keys?tab=attention&sort=attention", &s.admin_token)
        .await;
    let rows: Vec<(&str, Value)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["health"].clone()))
        .collect();
    assert_eq!(rows[0], (id_o, json!(["exposed"])), "{page}");
    assert_eq!(rows[1], (id_f, json!(["exposed"])), "{page}");
    let counts = s.get_json("/v1/api-keys/counts", &s.admin_token).await;
    assert_eq!(counts["summary"]["exposed"], 2, "{counts}");

    // The CLI: keys show/list carry the exposure; the policy shows and sets it.
    let user = User::new()
        .env("KEYDECK_URL", &s.base)
        .env("KEYDECK_TOKEN", &s.admin_token);
    let shown = user.run(&["keys", "show", id_f]).ok();
    assert!(
        shown.stdout.contains("by slack, at chat #ops"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("exposed: Reported leaked"),
        "{}",
        shown.stdout
    );
    let listed = user.keys(&[]);
    let row = listed.iter().find(|k| k["id"] == id_f).unwrap();
    assert_eq!(row["health"], json!(["exposed"]));
    assert_eq!(row["exposure"]["source"], "slack");
    let policy = user.run(&["policy", "show"]).ok();
    assert!(
        policy.stdout.contains("On leak") && policy.stdout.contains("flag"),
        "{}",
        policy.stdout
    );
    let set = user
        .run(&[
            "policy",
            "set",
            "--on-leak",
            "rotate",
            "--leak-grace",
            "10m",
            "--json",
            "--yes",
        ])
        .ok()
        .json();
    assert_eq!(
        (set["on_leak"].clone(), set["leak_grace_seconds"].clone()),
        (json!("rotate"), json!(600))
    );
    let shown = user.run(&["policy", "show"]).ok();
    assert!(
        shown
            .stdout
            .contains("rotate (the leaked key works 10 min more)"),
        "{}",
        shown.stdout
    );
    user.run(&["policy", "set", "--leak-grace", "25h"]).code(1);

    // The grace ends: the leaked key stops, its successor stays.
    clock.advance(Duration::seconds(600));
    assert_eq!(
        s.auth(&secret_o, None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Bad input: 400 naming the field, never a 500.
    for (body, needle) in [
        (json!({"reports": []}), "reports"),
        (json!({"reports": [{"sha256": "xyz"}]}), "reports[0].sha256"),
        (
            json!({"reports": [{"sha256": "ab".repeat(32), "token": "t"}]}),
            "exactly one",
        ),
        (
            json!({"sha256": "ab".repeat(32), "location": "x".repeat(501)}),
            "at most 500",
        ),
        (
            json!({"sha256": "ab".repeat(32), "source": "a\u{1b}b"}),
            "control",
        ),
        (
            json!({"reports": vec![json!({"sha256": "ab".repeat(32)}); 101]}),
            "1 to 100",
        ),
        (
            json!({"sha256": "ab".repeat(32), "extra": 1}),
            "unknown field",
        ),
    ] {
        let (status, code, err) =
            error_code(post(&s, "/v1/leaks", &s.admin_token, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    s.stop().await;
    backend.cleanup().await;
}

/// `on_leak = rotate`: the successor is made without a secret (a report
/// comes from a machine; no one is there to be shown one), says so, and an
/// admin issues its secret once (the CLI's `keys issue`, the API); the
/// leaked key still stops after the grace.
async fn a_rotated_leak_successor_waits_for_its_secret_issued_once(backend: Backend) {
    let clock = manual_clock(start());
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    set_policy(&s, json!({"on_leak": "rotate", "leak_grace_seconds": 600})).await;
    let (leaked, secret_o) = s.create_key("Billing", &["resources:read"]).await;
    let id_o = leaked["id"].as_str().unwrap();
    let (_, reporter) = s.create_key("CI scanner", &["leaks:report"]).await;
    let r = post(
        &s,
        "/v1/leaks",
        &reporter,
        json!({"sha256": sha256_hex(&secret_o), "location": "ci.log:3", "source": "ci"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let old = s
        .get_json(&format!("/v1/api-keys/{id_o}"), &s.admin_token)
        .await;
    let successor = old["replaced_by"].as_str().expect("a successor").to_owned();
    let new = s
        .get_json(&format!("/v1/api-keys/{successor}"), &s.admin_token)
        .await;
    assert_eq!(new["secret_pending"], true, "{new}");
    assert_eq!(new["status"], "active");
    assert_eq!(old["secret_pending"], false, "{old}");
    // Its details (the CLI's `keys show`) say how to issue it.
    let cli = User::new()
        .env("KEYDECK_URL", &s.base)
        .env("KEYDECK_TOKEN", &s.admin_token);
    let shown = cli.run(&["keys", "show", &successor]).ok();
    assert!(
        shown.stdout.contains("not issued yet") && shown.stdout.contains("keys issue"),
        "{}",
        shown.stdout
    );

    // Only an admin issues it: the reporter cannot.
    let path = format!("/v1/api-keys/{successor}/secret");
    let r = post(&s, &path, &reporter, json!({})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The CLI prints it once, alone on standard output; it works at once.
    let issued = cli.run(&["keys", "issue", &successor]).ok();
    let secret_n = issued.stdout.trim().to_owned();
    assert!(secret_n.starts_with("eg_live_"), "{}", issued.stdout);
    assert_eq!(s.auth(&secret_n, None).await.status(), StatusCode::OK);
    let new = s
        .get_json(&format!("/v1/api-keys/{successor}"), &s.admin_token)
        .await;
    assert_eq!(new["secret_pending"], false, "{new}");
    assert!(
        secret_n.starts_with(new["prefix"].as_str().unwrap()),
        "{new}"
    );
    // Once: a second issue is refused and shows no secret.
    let (status, code, body) = error_code(post(&s, &path, &s.admin_token, json!({})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "secret_already_issued"),
        "{body}"
    );
    assert!(!body.to_string().contains(&secret_n[8..]), "{body}");
    let again = cli.run(&["keys", "issue", &successor]);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stdout.is_empty(), "{again:?}");
    // A key made with its secret, and one that does not exist.
    let r = post(
        &s,
        &format!("/v1/api-keys/{id_o}/secret"),
        &s.admin_token,
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = post(
        &s,
        "/v1/api-keys/key_nothere/secret",
        &s.admin_token,
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let actions = actions_of(&s, &successor).await;
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(names, ["api_key.secret_issued"], "{actions:?}");
    assert_eq!(actions[0].1["prefix"], new["prefix"]);

    // The leaked key works through the grace, then stops; the successor goes on.
    assert_eq!(s.auth(&secret_o, None).await.status(), StatusCode::OK);
    clock.advance(Duration::seconds(601));
    assert_eq!(
        s.auth(&secret_o, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.auth(&secret_n, None).await.status(), StatusCode::OK);
}

async fn a_reporter_key_reports_and_does_nothing_else(backend: Backend) {
    let s = TestServer::start(&backend).await;
    // keydeck's own scope: listed last, after Full Access, apart.
    assert_eq!(s.scope_ids().await.last().unwrap(), "leaks:report");
    let (_, full) = s.create_key("Everything", &["full_access"]).await;
    let r = post(&s, "/v1/leaks", &full, json!({"sha256": "ab".repeat(32)})).await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "Full Access does not grant leaks:report"
    );
    let r = s
        .create_key_as(
            &s.admin_token,
            json!({"name": "CI", "scopes": ["leaks:report", "sessions:read"]}),
        )
        .await;
    let (status, _, err) = error_code(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (_, reporter) = s.create_key("CI scanner", &["leaks:report"]).await;
    // The CLI makes one too (its scope check knows keydeck's own scope).
    let cli = User::new()
        .env("KEYDECK_URL", &s.base)
        .env("KEYDECK_TOKEN", &s.admin_token);
    let made = cli
        .run(&[
            "keys",
            "create",
            "--name",
            "CI leak reporter",
            "--scope",
            "leaks:report",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(made["api_key"]["scopes"], json!(["leaks:report"]));
    let (victim, victim_secret) = s.create_key("Web", &["sessions:read"]).await;

    // Nothing else: 403 on listing, creating, revoking, the policy.
    let id = victim["id"].as_str().unwrap();
    let refused = [
        s.get("/v1/api-keys", &reporter).send().await.unwrap(),
        s.create_key_as(&reporter, json!({"name": "x", "scopes": ["sessions:read"]}))
            .await,
        s.http
            .delete(s.url(&format!("/v1/api-keys/{id}")))
            .bearer_auth(&reporter)
            .send()
            .await
            .unwrap(),
        s.get("/v1/policy", &reporter).send().await.unwrap(),
        s.get("/v1/audit-logs", &reporter).send().await.unwrap(),
    ];
    for r in refused {
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{}", r.url());
    }
    assert_eq!(s.auth(&victim_secret, None).await.status(), StatusCode::OK);

    // Another organisation's key: accepted, and untouched.
    let store = backend.store().await;
    let (other_admin, _) = add_org(store.as_ref(), "other", Plan::Paid).await;
    let r = s
        .create_key_as(
            &other_admin,
            json!({"name": "Theirs", "scopes": ["sessions:read"]}),
        )
        .await;
    let theirs: Value = r.json().await.unwrap();
    let their_secret = theirs["secret"].as_str().unwrap();
    let answer: Value = post(
        &s,
        "/v1/leaks",
        &reporter,
        json!({"reports": [
            {"sha256": sha256_hex(their_secret), "location": "a", "source": "ci"},
            {"token": their_secret, "location": "b", "source": "ci"},
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer, json!({"accepted": 2, "matched": []}));
    assert_eq!(s.auth(their_secret, None).await.status(), StatusCode::OK);
    let their_id = theirs["api_key"]["id"].as_str().unwrap();
    let their_key = s
        .get_json(&format!("/v1/api-keys/{their_id}"), &other_admin)
        .await;
    assert!(their_key["exposure"].is_null(), "{their_key}");

    // Its own organisation's key: accepted, no more said; the policy acts.
    let answer: Value = post(
        &s,
        "/v1/leaks",
        &reporter,
        json!({"sha256": sha256_hex(&victim_secret), "location": "repo", "source": "ci"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer, json!({"accepted": 1, "matched": []}));
    assert_eq!(
        s.auth(&victim_secret, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let actions = actions_of(&s, id).await;
    assert_eq!(actions[1].0, "api_key.exposed");
    let log = s.get_json("/v1/audit-logs?limit=5", &s.admin_token).await;
    let exposed = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "api_key.exposed")
        .unwrap();
    assert_eq!(exposed["actor"]["type"], "api_key", "{exposed}");
    assert_eq!(exposed["actor"]["name"], "CI scanner");
    s.stop().await;
    drop(store);
    backend.cleanup().await;
}

const GITLAB_TOKEN: &str = "gitlab-shared-secret-0123456789";
const GITLAB_TYPE: &str = "gitleaks_rule_id_keydeck_api_key";

async fn gitlab_revokes_and_no_raw_token_reaches_the_database_or_log(backend: Backend) {
    let dir = backend.data_dir.path().to_path_buf();
    let log = std::env::temp_dir().join(format!(
        "keydeck-leaks-{}.log",
        keydeck::key::random_base62(8).as_str()
    ));
    let server = ServerProcess::spawn_with(
        &backend,
        &dir,
        &log,
        &[
            ("KEYDECK_GITLAB_TOKEN", GITLAB_TOKEN),
            ("KEYDECK_LEAK_REPORTS_PER_MINUTE", "5"),
        ],
    );
    let http = reqwest::Client::new();
    let t = admin_token(&dir);
    let mut secrets = Vec::new();
    for name in ["gitlab", "scanned"] {
        let r: Value = http
            .post(server.url("/v1/api-keys"))
            .bearer_auth(&t)
            .json(&json!({"name": name, "scopes": ["sessions:read"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        secrets.push((
            r["api_key"]["id"].as_str().unwrap().to_owned(),
            r["secret"].as_str().unwrap().to_owned(),
        ));
    }
    let gitlab = |path: &str| {
        http.post(server.url(path))
            .header("authorization", GITLAB_TOKEN)
    };

    let types = http
        .get(server.url("/v1/revocable_token_types"))
        .header("authorization", GITLAB_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(types.status(), StatusCode::OK);
    assert_eq!(
        types.json::<Value>().await.unwrap(),
        json!({"types": [GITLAB_TYPE]})
    );
    let unauthorised = http
        .get(server.url("/v1/revocable_token_types"))
        .header("authorization", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);

    let body = json!([{"type": GITLAB_TYPE, "token": secrets[0].1, "location": "https://gitlab.example/p/-/blob/main/.env"}]);
    for _ in 0..2 {
        let r = gitlab("/v1/revoke_tokens")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let auth = |secret: String| {
        let http = http.clone();
        let url = server.url("/v1/auth");
        async move {
            http.get(url)
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(auth(secrets[0].1.clone()).await, StatusCode::UNAUTHORIZED);
    let audit: Value = http
        .get(server.url("/v1/audit-logs"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let of_key: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["api_key_id"] == secrets[0].0.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        of_key,
        ["api_key.revoked", "api_key.exposed", "api_key.created"],
        "idempotent"
    );

    let bad_type = gitlab("/v1/revoke_tokens")
        .json(&json!([{"type": "aws_key", "token": "x", "location": ""}]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_type.status(), StatusCode::BAD_REQUEST);
    let malformed = gitlab("/v1/revoke_tokens")
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);

    // scan --report: the digests only, as the admin; the policy revokes.
    let user = User::new()
        .env("KEYDECK_URL", server.url("").trim_end_matches('/'))
        .env("KEYDECK_TOKEN", &t);
    let tree = user.home.path().join("repo");
    std::fs::create_dir_all(&tree).unwrap();
    // With 150 more keys of the format that the service never made: two
    // requests (the service takes 100 a request), one answer.
    let format = keydeck::key::SecretFormat::default();
    let mut text = format!("API_KEY={}\n", secrets[1].1);
    for _ in 0..150 {
        text.push_str(&format!("OTHER={}\n", format.generate().expose()));
    }
    std::fs::write(tree.join("config.env"), text).unwrap();
    let run = user
        .run(&["scan", "--report", tree.to_str().unwrap()])
        .code(1);
    run.stderr_has("accepted 151 report(s)")
        .stderr_has(": revoke");
    assert_eq!(auth(secrets[1].1.clone()).await, StatusCode::UNAUTHORIZED);

    // The sixth GitLab request this minute (the types, five revocations) is refused.
    let limited = gitlab("/v1/revoke_tokens")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(server.terminate().success());

    // No key, whole or its random part, and not the GitLab token, in the
    // log, the data dir or any table.
    let mut needles: Vec<String> = secrets
        .iter()
        .flat_map(|(_, s)| [s.clone(), s[8..40].to_owned()])
        .collect();
    needles.push(GITLAB_TOKEN.to_owned());
    let log_text = std::fs::read(&log).unwrap();
    assert!(
        String::from_utf8_lossy(&log_text).contains("reported leaked"),
        "the log is the real one"
    );
    let mut haystacks = vec![(log.display().to_string(), log_text)];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    if let Some(url) = backend.database_url_arg() {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for table in ["api_keys", "audit_log"] {
            let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT t::text FROM {table} t"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            let dump = rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n");
            assert!(dump.contains("api_key.exposed") || table == "api_keys");
            haystacks.push((format!("table {table}"), dump.into_bytes()));
        }
    }
    for (name, bytes) in &haystacks {
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "a secret was found in {name}"
            );
        }
    }
    let _ = std::fs::remove_file(&log);
    backend.cleanup().await;
}

/// A P-256 key pair and GitHub's key file shape holding its public half.
fn github_key(id: &str) -> (ring::signature::EcdsaKeyPair, Value) {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // rcgen writes the SubjectPublicKeyInfo PEM, as GitHub publishes it.
    let pem = rcgen::KeyPair::try_from(pkcs8.as_ref())
        .unwrap()
        .public_key_pem();
    let file = json!({"public_keys": [{"key_identifier": id, "key": pem, "is_current": true}]});
    (pair, file)
}

/// A service that takes GitHub's secret-scanning alerts signed with the
/// keys of `file` (see [`github_key`]).
async fn with_github_keys(backend: &Backend, file: &Value) -> TestServer {
    let keys = keydeck::service::GithubKeys::from_json(&file.to_string()).unwrap();
    TestServer::start_with(
        backend,
        std::sync::Arc::new(keydeck::clock::SystemClock),
        |c| {
            c.leaks.github_keys = keys;
        },
    )
    .await
}

fn sign(pair: &ring::signature::EcdsaKeyPair, body: &[u8]) -> String {
    let rng = ring::rand::SystemRandom::new();
    let sig = pair.sign(&rng, body).unwrap();
    base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
}

async fn github_signed_matches_are_answered_with_feedback(backend: Backend) {
    let (pair, file) = github_key("key-1");
    let (stranger, _) = github_key("key-2");
    let s = with_github_keys(&backend, &file).await;
    let (key, secret) = s.create_key("Mobile", &["sessions:read"]).await;
    // One character changed (a secret ending in `x` would make `…x` itself).
    let other = if secret.ends_with('x') { 'y' } else { 'x' };
    let lookalike = format!("{}{other}", &secret[..secret.len() - 1]);
    let body = serde_json::to_vec(&json!([
        {"token": secret, "type": "keydeck_api_key", "url": "https://github.com/o/r/blob/abc/app.js", "source": "content"},
        {"token": lookalike, "type": "keydeck_api_key", "url": "https://github.com/o/r/blob/abc/b.js", "source": "content"},
    ]))
    .unwrap();
    let send = |key_id: &str, signature: String, body: Vec<u8>| {
        s.http
            .post(s.url("/v1/github/secret-scanning"))
            .header("content-type", "application/json")
            .header("Github-Public-Key-Identifier", key_id)
            .header("Github-Public-Key-Signature", signature)
            .body(body)
            .send()
    };
    // Refused: another key's signature, an unknown key id, a changed body.
    let r = send("key-1", sign(&stranger, &body), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = send("key-9", sign(&pair, &body), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mut changed = body.clone();
    changed[3] ^= 1;
    let r = send("key-1", sign(&pair, &body), changed).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.auth(&secret, None).await.status(), StatusCode::OK);

    let r = send("key-1", sign(&pair, &body), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let feedback: Value = r.json().await.unwrap();
    assert_eq!(
        feedback,
        json!([
            {"token_hash": sha256_hex(&secret), "token_type": "keydeck_api_key", "label": "true_positive"},
            {"token_hash": sha256_hex(&lookalike), "token_type": "keydeck_api_key", "label": "false_positive"},
        ])
    );
    assert_eq!(
        s.auth(&secret, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let id = key["id"].as_str().unwrap();
    let shown = s
        .get_json(&format!("/v1/api-keys/{id}"), &s.admin_token)
        .await;
    assert_eq!(shown["exposure"]["source"], "github content");
    assert_eq!(
        shown["exposure"]["location"],
        "https://github.com/o/r/blob/abc/app.js"
    );
    s.stop().await;
    backend.cleanup().await;
}

/// The terminal UI: an exposed key heads the Attention tab, worst of all,
/// and its details say when, by whom and where it was reported (snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_an_exposed_key_first_in_attention_with_its_exposure() {
    use common::ui::{start_time, World};
    use crossterm::event::KeyCode;
    use keydeck::tui::theme::Theme;
    let w = World::new().await;
    let s = &w.server;
    set_policy(s, json!({"on_leak": "flag"})).await;
    let day = |d: i64| start_time() + Duration::days(d);
    w.clock.set(day(0));
    w.create(json!({"name": "Lapsed", "scopes": ["sessions:read"], "expires_at": day(3)}))
        .await;
    w.create(json!({"name": "Forever", "scopes": ["sessions:read"]}))
        .await;
    let leaked = w
        .create(
            json!({"name": "Payments worker", "scopes": ["sessions:read"], "expires_at": day(200)}),
        )
        .await;
    let secret = leaked["secret"].as_str().unwrap();
    w.clock.set(day(5));
    let r = post(
        s,
        "/v1/leaks",
        &s.admin_token,
        json!({
            "sha256": sha256_hex(secret),
            "location": "github.com/acme/shop/blob/main/.env:3:9",
            "source": "keydeck-scan",
        }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    w.clock.set(day(6));

    let mut ui = w.ui(Theme { color: false }, 100, 24).await;
    ui.press(KeyCode::Char('5')).await;
    ui.press(KeyCode::Home).await;
    let order: Vec<String> = ui
        .app
        .rows()
        .iter()
        .map(|&i| ui.app.keys()[i].name.clone())
        .collect();
    assert_eq!(order, ["Payments worker", "Lapsed", "Forever"]);
    assert!(ui.screen().contains("1 exposed"), "{}", ui.screen());
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(screen.contains("by keydeck-scan"), "{screen}");
    assert!(
        screen.contains("at github.com/acme/shop/blob/main/.env:3:9"),
        "{screen}"
    );
    assert!(
        screen.contains("exposed: Reported leaked 1 day ago"),
        "{screen}"
    );
    insta::with_settings!({filters => vec![
        (r"eg_live_[0-9A-Za-z]{4}", "eg_live_XXXX"),
        (r"key_[0-9A-Za-z]{20}", "key_XXXXXXXXXXXXXXXXXXXX"),
    ]}, {
        insta::assert_snapshot!("exposed_key_in_attention_details", screen);
    });
}

/// The create form offers the reporter scope apart from the others: Full
/// Access does not tick it, with another scope it is refused at its field
/// (nothing sent), alone it makes a key that reports leaks (accepted) and
/// can do nothing else (403 on the key list).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_create_form_makes_a_reporter_key_apart_from_full_access() {
    use common::ui::{secret_on, World};
    use crossterm::event::KeyCode;
    use keydeck::tui::theme::Theme;
    let w = World::new().await;
    let s = &w.server;
    let mut ui = w.ui(Theme { color: false }, 100, 40).await;
    ui.press(KeyCode::Char('n')).await;
    ui.type_text("CI scanner").await;
    // Name, Description, Expiry, four scopes: Full Access, then the reporter.
    for _ in 0..7 {
        ui.press(KeyCode::Tab).await;
    }
    ui.press(KeyCode::Char(' ')).await; // Full Access
    let screen = ui.screen();
    assert!(
        screen.contains("[x] Full Access") && screen.contains("[ ] Leak reports"),
        "Full Access leaves the reporter scope alone:\n{screen}"
    );
    assert!(
        screen.contains("Reporter     [ ] Leak reports")
            && screen.contains("             for a scanner or CI: can only report leaked keys"),
        "{screen}"
    );
    ui.press(KeyCode::Tab).await;
    ui.press(KeyCode::Char(' ')).await; // Leak reports
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("✗ leaks:report cannot be combined with other scopes"),
        "refused at its field:\n{screen}"
    );
    assert!(w.keys().await.is_empty(), "nothing was sent");
    // Full Access off (the refusal took the focus to the first scope): the
    // reporter scope alone.
    for _ in 0..4 {
        ui.press(KeyCode::Tab).await;
    }
    ui.press(KeyCode::Char(' ')).await;
    let screen = ui.screen();
    assert!(
        screen.contains("[ ] Full Access") && screen.contains("[x] Leak reports"),
        "{screen}"
    );
    ui.press(KeyCode::Enter).await;
    let reporter = secret_on(&ui.screen());
    let keys = w.keys().await;
    assert_eq!(keys[0]["scopes"], json!(["leaks:report"]));
    let r = post(
        s,
        "/v1/leaks",
        &reporter,
        json!({"sha256": "ab".repeat(32)}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.get("/v1/api-keys", &reporter).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// The terminal UI, `on_leak = rotate`: the successor's details say it has
/// no secret, why, and that `I` issues it; `I` shows it once in the
/// copy-once modal, and it works; the leaked key's details name the successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_issues_the_secret_of_a_leak_successor_once() {
    use common::ui::{secret_on, World};
    use crossterm::event::KeyCode;
    use keydeck::tui::theme::Theme;
    let w = World::new().await;
    let s = &w.server;
    set_policy(s, json!({"on_leak": "rotate", "leak_grace_seconds": 3600})).await;
    let leaked = w
        .create(json!({"name": "Payments worker", "scopes": ["sessions:read"]}))
        .await;
    let id_o = leaked["api_key"]["id"].as_str().unwrap().to_owned();
    let r = post(
        s,
        "/v1/leaks",
        &s.admin_token,
        json!({"token": leaked["secret"], "location": ".env:3", "source": "keydeck-scan"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let old = s
        .get_json(&format!("/v1/api-keys/{id_o}"), &s.admin_token)
        .await;
    let successor = old["replaced_by"].as_str().unwrap().to_owned();

    let mut ui = w.ui(Theme { color: false }, 110, 40).await;
    let row_of = |ui: &keydeck::tui::testing::Harness, id: &str| {
        ui.app
            .rows()
            .iter()
            .position(|&i| ui.app.keys()[i].id == id)
            .expect("the key is listed")
    };
    // The leaked key's details point to its successor.
    ui.press(KeyCode::Home).await;
    for _ in 0..row_of(&ui, &id_o) {
        ui.press(KeyCode::Down).await;
    }
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("Replaced by") && screen.contains(&successor[..12]),
        "{screen}"
    );
    ui.press(KeyCode::Esc).await;

    // Its row says it cannot be used yet.
    let row = ui
        .screen()
        .lines()
        .filter(|l| l.contains("Payments worker"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(row.iter().any(|l| l.contains("no secret")), "{row:#?}");
    ui.press(KeyCode::Home).await;
    for _ in 0..row_of(&ui, &successor) {
        ui.press(KeyCode::Down).await;
    }
    ui.press(KeyCode::Enter).await;
    let screen = ui.screen();
    assert!(
        screen.contains("no secret: nothing authenticates as it yet"),
        "{screen}"
    );
    assert!(
        screen.contains("nothing can use it yet — press I to issue its secret (shown once)"),
        "{screen}"
    );
    ui.press(KeyCode::Char('I')).await;
    let secret = secret_on(&ui.screen());
    assert_eq!(w.auth(&secret, "sessions:read").await, 200);
    let new = s
        .get_json(&format!("/v1/api-keys/{successor}"), &s.admin_token)
        .await;
    assert_eq!(new["secret_pending"], false, "{new}");
}

/// The leak endpoints take bodies up to 128 KiB (a full batch of reports, a
/// GitHub batch of matches), not only the 16 KiB of the rest of the API; one
/// past that is answered 413 naming the limit — and the answer reaches the
/// client, which is still sending when a too-large body is refused.
async fn batches_past_16_kib_are_read_up_to_the_leak_limit(backend: Backend) {
    use keydeck::service::{MAX_BODY_BYTES, MAX_LEAK_BODY_BYTES};
    let (pair, file) = github_key("key-1");
    let s = with_github_keys(&backend, &file).await;
    let (key, secret) = s.create_key("Batch", &["sessions:read"]).await;

    // A full batch of reports with long locations: 100 × ~0.5 KiB.
    let location = "src/".to_owned() + &"l".repeat(keydeck::key::leak::MAX_LOCATION - 10);
    let mut reports: Vec<Value> = (0..keydeck::key::leak::MAX_REPORTS - 1)
        .map(|i| json!({"sha256": sha256_hex(&format!("not a key {i}")), "location": location, "source": "scan"}))
        .collect();
    reports.push(json!({"sha256": sha256_hex(&secret), "location": location, "source": "scan"}));
    let body = json!({ "reports": reports });
    let size = serde_json::to_vec(&body).unwrap().len();
    assert!(
        size > MAX_BODY_BYTES && size <= MAX_LEAK_BODY_BYTES,
        "{size}"
    );
    let r = post(&s, "/v1/leaks", &s.admin_token, body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], keydeck::key::leak::MAX_REPORTS);
    assert_eq!(answer["matched"][0]["id"], key["id"]);

    // GitHub's batch of 100 matches, signed.
    let matches: Vec<Value> = (0..100)
        .map(|i| json!({"token": format!("{}{i:03}", &secret[..secret.len() - 3]), "type": "keydeck_api_key", "url": format!("https://github.com/o/r/blob/{}/f{i}.js", "a".repeat(80)), "source": "content"}))
        .collect();
    let body = serde_json::to_vec(&matches).unwrap();
    assert!(body.len() > MAX_BODY_BYTES, "{}", body.len());
    let r = s
        .http
        .post(s.url("/v1/github/secret-scanning"))
        .header("content-type", "application/json")
        .header("Github-Public-Key-Identifier", "key-1")
        .header("Github-Public-Key-Signature", sign(&pair, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let feedback: Vec<Value> = r.json().await.unwrap();
    assert_eq!(feedback.len(), 100);

    // Past the limit: 413 with the route's limit, received every time, for
    // a body far past it too (512 KiB: the client is still sending).
    for (path, limit, token) in [
        ("/v1/leaks", MAX_LEAK_BODY_BYTES, &s.admin_token),
        ("/v1/api-keys", MAX_BODY_BYTES, &s.admin_token),
    ] {
        for size in [limit + 1, 512 * 1024] {
            for _ in 0..5 {
                let r = s
                    .http
                    .post(s.url(path))
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(vec![b' '; size])
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{path}, {size} bytes: no answer: {e}"));
                let (status, code, body) = error_code(r).await;
                assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path} {size}");
                assert_eq!(code, "payload_too_large");
                let kib = limit / 1024;
                let message = body["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!("larger than {kib} KiB")),
                    "{message}"
                );
            }
        }
    }
    s.stop().await;
    backend.cleanup().await;
}
