//! The `no secret` health badge, on both backends: the successor the
//! `rotate` leak policy makes has no secret until an admin issues it, and
//! until then it needs attention — right after the leaked key itself, in
//! the API's list (`health`, the Attention tab and order, the counts: all
//! computed in SQL, and equal to what `key::health` computes from the listed
//! keys), `keys list --attention` (table and `--json`), `keys show`, and the
//! UI's summary line, Attention tab and details, whole and as a window over
//! the service. Once its secret is issued the badge is gone everywhere.

use crate::common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::cli::User;
use common::{manual_clock, Backend, TestServer};
use crossterm::event::KeyCode;
use keydeck::api::ApiKey;
use keydeck::client::Client;
use keydeck::key::health::{self, Summary};
use keydeck::key::policy::Policy;
use keydeck::key::Secret;
use keydeck::tui::testing::Harness;
use keydeck::tui::theme::Theme;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(a_leak_successor_needs_attention_until_its_secret_is_issued);

/// Now, to the second: the CLI's own clock and the service's agree on days.
fn real_now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

/// A key made at the clock's time: its id and secret.
async fn key(s: &TestServer, name: &str, expires: Option<DateTime<Utc>>) -> (String, String) {
    let mut body = json!({"name": name, "scopes": ["sessions:read"]});
    if let Some(at) = expires {
        body["expires_at"] = json!(at);
    }
    let r = s.create_key_as(&s.admin_token, body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    (
        made["api_key"]["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

async fn send(s: &TestServer, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = s
        .http
        .request(method, s.url(path))
        .bearer_auth(&s.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// The ids of a list's page.
fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The API's Attention order read one key per page, forwards and backwards
/// (each segment boundary crossed by a position), equals `want`.
async fn attention_pages_are(s: &TestServer, want: &[String]) {
    let base = "/v1/api-keys?tab=attention&sort=attention&limit=1";
    let mut got = Vec::new();
    let mut page = s.get_json(base, &s.admin_token).await;
    loop {
        got.extend(ids(&page));
        let Some(next) = page["next_cursor"].as_str() else {
            break;
        };
        page = s
            .get_json(&format!("{base}&cursor={next}"), &s.admin_token)
            .await;
    }
    assert_eq!(got, want, "forwards");
    let mut got = Vec::new();
    let mut page = s
        .get_json(&format!("{base}&from=end"), &s.admin_token)
        .await;
    loop {
        got.splice(0..0, ids(&page));
        let Some(prev) = page["prev_cursor"].as_str() else {
            break;
        };
        page = s
            .get_json(&format!("{base}&before={prev}"), &s.admin_token)
            .await;
    }
    assert_eq!(got, want, "backwards");
}

/// What the service computes in SQL (badges of the list, the Attention
/// order both ways, the counts) is what `key::health` computes from the
/// listed keys; the Attention ids, worst first.
async fn sql_agrees_with_the_rules(s: &TestServer, now: DateTime<Utc>) -> Vec<String> {
    let policy: Policy =
        serde_json::from_value(s.get_json("/v1/policy", &s.admin_token).await).expect("the policy");
    let page = s.get_json("/v1/api-keys?limit=500", &s.admin_token).await;
    let keys: Vec<ApiKey> = serde_json::from_value(page["data"].clone()).unwrap();
    for k in &keys {
        let local: Vec<&str> = health::badges(k, &policy, now)
            .iter()
            .map(|b| b.id())
            .collect();
        let sent = k.health.as_ref().expect("a listed key carries its badges");
        assert_eq!(sent, &local, "{}", k.name);
    }
    let want: Vec<String> = health::attention(&keys, &policy, now)
        .into_iter()
        .map(|i| keys[i].id.clone())
        .collect();
    for order in ["asc", "desc"] {
        let page = s
            .get_json(
                &format!("/v1/api-keys?tab=attention&sort=attention&order={order}&limit=500"),
                &s.admin_token,
            )
            .await;
        let mut got = ids(&page);
        if order == "desc" {
            got.reverse();
        }
        assert_eq!(got, want, "{order}");
    }
    attention_pages_are(s, &want).await;
    let counts = s.get_json("/v1/api-keys/counts", &s.admin_token).await;
    let sum = Summary::of(&keys, &policy, now);
    let mut expected = json!({
        "active": sum.active, "expiring": sum.expiring, "rotate": sum.rotate,
        "unused": sum.unused, "expired": sum.expired, "rotating": sum.rotating,
        "policy": sum.policy, "attention": sum.attention,
    });
    for (name, n) in [
        ("exposed", sum.exposed),
        ("refused", sum.refused),
        ("no_secret", sum.no_secret),
    ] {
        if n > 0 {
            expected[name] = json!(n);
        }
    }
    assert_eq!(counts["summary"], expected);
    assert_eq!(counts["tabs"]["attention"], json!(want.len()), "{counts}");
    want
}

/// The screen's text with the details' borders, scroll bar and wrapping
/// undone: one line of words, so a sentence is found wherever it wrapped.
fn words_of(screen: &str) -> String {
    screen
        .lines()
        .map(|l| l.trim().trim_matches(['│', '║', '█']).trim())
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The UI's table rows that show `word` (the screen's lines holding it).
fn rows_with(screen: &str, word: &str) -> Vec<String> {
    screen
        .lines()
        .filter(|l| l.contains(word))
        .map(str::to_owned)
        .collect()
}

async fn a_leak_successor_needs_attention_until_its_secret_is_issued(backend: Backend) {
    let now = real_now();
    let clock = manual_clock(now - Duration::days(10));
    let s = TestServer::start_with(&backend, clock.clone(), |_| {}).await;
    send(
        &s,
        reqwest::Method::PUT,
        "/v1/policy",
        json!({"on_leak": "rotate", "leak_grace_seconds": 3600}),
    )
    .await;
    // A second apart: expired, no expiry, expiring, and the one to leak.
    let mut made = Vec::new();
    for (name, expires) in [
        ("Old", Some(now - Duration::days(1))),
        ("Forever", None),
        ("Expiring", Some(now + Duration::days(2))),
        ("Billing", Some(now + Duration::days(100))),
    ] {
        made.push(key(&s, name, expires).await);
        clock.advance(Duration::seconds(1));
    }
    let [old, forever, expiring, billing] = made.try_into().unwrap();
    // Reported leaked ten minutes ago: rotated, the successor without a secret.
    clock.set(now - Duration::minutes(10));
    send(
        &s,
        reqwest::Method::POST,
        "/v1/leaks",
        json!({"token": billing.1, "location": ".env:3", "source": "keydeck-scan"}),
    )
    .await;
    clock.set(now);
    let leaked = s
        .get_json(&format!("/v1/api-keys/{}", billing.0), &s.admin_token)
        .await;
    let successor = leaked["replaced_by"]
        .as_str()
        .expect("a successor")
        .to_owned();

    // The API: `no_secret`, right after the leaked key, counted; SQL and the rules agree.
    let attention = sql_agrees_with_the_rules(&s, now).await;
    assert_eq!(
        attention,
        [&billing.0, &successor, &old.0, &expiring.0, &forever.0].map(String::clone),
        "exposed, no secret, expired, expiring, no expiry"
    );
    let page = s.get_json("/v1/api-keys?limit=500", &s.admin_token).await;
    let health_of = |page: &Value, id: &str| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .map(|k| k["health"].clone())
            .unwrap()
    };
    assert_eq!(health_of(&page, &successor), json!(["no_secret"]));
    assert_eq!(health_of(&page, &billing.0), json!(["exposed"]));
    let counts = s.get_json("/v1/api-keys/counts", &s.admin_token).await;
    assert_eq!(counts["summary"]["no_secret"], 1, "{counts}");
    assert_eq!(counts["tabs"]["attention"], 5, "{counts}");

    // The CLI: HEALTH and --json in the Attention order, the reason and the
    // command in `keys show`.
    let cli = Arc::new(
        User::new()
            .env("KEYDECK_URL", &s.base)
            .env("KEYDECK_TOKEN", &s.admin_token)
            .env("TZ", "UTC"),
    );
    let (list, json_list, show) = {
        let (cli, id) = (cli.clone(), successor.clone());
        tokio::task::spawn_blocking(move || {
            (
                cli.run(&["keys", "list", "--attention"]).ok().stdout,
                cli.run(&["keys", "list", "--attention", "--json"])
                    .ok()
                    .json(),
                cli.run(&["keys", "show", &id]).ok().stdout,
            )
        })
        .await
        .unwrap()
    };
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{list}");
    for (row, (name, badge)) in rows.iter().zip([
        ("Billing", "exposed"),
        ("Billing", "no secret"),
        ("Old", ""),
        ("Expiring", "expiring"),
        ("Forever", "no expiry"),
    ]) {
        assert!(row.contains(name) && row.contains(badge), "{list}");
    }
    let listed = json_list.as_array().unwrap();
    let listed_ids: Vec<&str> = listed.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(listed_ids, attention, "{json_list}");
    assert_eq!(listed[1]["health"], json!(["no_secret"]), "{json_list}");
    let show = words_of(&show);
    assert!(
        show.contains(
            "no secret: Made by the leak policy 10 min ago to replace a leaked key, \
             without a secret: nothing can use it yet"
        ),
        "{show}"
    );
    assert!(
        show.contains(&format!(
            "run keydeck keys issue {successor} to issue its secret"
        )),
        "{show}"
    );

    // The UI, whole and as a window over the service (capacity 2 < 5 keys):
    // the summary line, the Attention tab's order, the details' reason and key.
    let client = || Client::new(&s.base, Secret::new(s.admin_token.clone())).unwrap();
    let mut whole = Harness::start(client(), clock.clone(), Theme { color: false }, 120, 14).await;
    let mut window = Harness::start_with(
        client(),
        clock.clone(),
        Theme { color: false },
        (120, 14),
        |app| app.set_capacity(2),
    )
    .await;
    for ui in [&mut whole, &mut window] {
        ui.app.set_refresh_every(Duration::days(1));
        let screen = ui.screen();
        assert!(screen.contains(" · 1 without a secret"), "{screen}");
        ui.press(KeyCode::Char('5')).await;
        let screen = ui.screen();
        assert!(screen.contains("5 Attention (5)"), "{screen}");
        let line = |word: &str| screen.lines().position(|l| l.contains(word));
        let (exposed, no_secret) = (line("exposed"), line("no secret"));
        assert!(no_secret.is_some(), "{screen}");
        assert!(exposed < no_secret && no_secret < line("Old"), "{screen}");
        assert_eq!(rows_with(&screen, "no secret").len(), 1, "{screen}");
    }
    let rows = whole.app.rows().to_vec();
    let at = rows
        .iter()
        .position(|&i| whole.app.keys()[i].id == successor)
        .expect("the successor in Attention");
    assert_eq!(at, 1, "second, after the leaked key");
    whole.press(KeyCode::Home).await;
    whole.press(KeyCode::Down).await;
    whole.press(KeyCode::Enter).await;
    let mut details = whole.screen();
    for _ in 0..20 {
        if words_of(&details).contains("press I to issue its secret") {
            break;
        }
        whole.press(KeyCode::Char('j')).await;
        details.push_str(&whole.screen());
    }
    let details = words_of(&details);
    assert!(
        details.contains("Secret no secret: nothing authenticates as it yet"),
        "{details}"
    );
    assert!(
        details.contains(
            "no secret: Made by the leak policy 10 min ago to replace a leaked key, without \
             a secret: nothing can use it yet — press I to issue its secret (shown once)"
        ),
        "{details}"
    );
    whole.press(KeyCode::Esc).await;

    // Issued (the CLI): it works, and the badge is gone everywhere.
    let issued = {
        let (cli, id) = (cli.clone(), successor.clone());
        tokio::task::spawn_blocking(move || cli.run(&["keys", "issue", &id]).ok().stdout)
            .await
            .unwrap()
    };
    assert_eq!(s.auth(issued.trim(), None).await.status(), StatusCode::OK);
    let attention = sql_agrees_with_the_rules(&s, now).await;
    assert_eq!(
        attention,
        [&billing.0, &old.0, &expiring.0, &forever.0].map(String::clone)
    );
    let page = s.get_json("/v1/api-keys?limit=500", &s.admin_token).await;
    assert_eq!(health_of(&page, &successor), json!([]));
    let counts = s.get_json("/v1/api-keys/counts", &s.admin_token).await;
    assert!(counts["summary"].get("no_secret").is_none(), "{counts}");
    let json_list = tokio::task::spawn_blocking(move || {
        cli.run(&["keys", "list", "--attention", "--json"])
            .ok()
            .json()
    })
    .await
    .unwrap();
    let listed_ids: Vec<&str> = json_list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids, attention, "{json_list}");
    for ui in [&mut whole, &mut window] {
        ui.press(KeyCode::Char('r')).await;
        let screen = ui.screen();
        assert!(!screen.contains("no secret"), "{screen}");
        assert!(!screen.contains("without a secret"), "{screen}");
        assert!(screen.contains("5 Attention (4)"), "{screen}");
    }
    s.stop().await;
    backend.cleanup().await;
}
