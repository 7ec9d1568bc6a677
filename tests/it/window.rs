//! The key list as a window over the service (issue 19), on both backends:
//! every tab × sort × order read page by page forwards (`cursor`) and
//! backwards (`from=end`, then `before`) gives exactly the whole ordered
//! list, once each, while keys are created in between; the counts equal what
//! each tab lists and the summary line's rules; the filter finds substrings
//! through the trigram index and still answers 1–2 characters; each key's
//! badges are the ones `key::health` (and so `keys list`) gives.
//!
//! The keys are made on a hand-moved clock (created over 14 months, some
//! used, expired, expiring, revoked, rotated), and listed at one instant,
//! so the expected order is computed here with the domain's own rules.

use crate::common;

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::{manual_clock, Backend, TestServer};
use keydeck::api::ApiKey;
use keydeck::clock::ManualClock;
use keydeck::key::health::{self, Summary};
use keydeck::key::policy::Policy;
use keydeck::key::KeyStatus;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    pages_both_ways_make_the_whole_order,
    counts_filter_and_badges_agree_with_the_rules
);

const KEYS: i64 = 45;
const PAGE: usize = 4;

const TABS: [&str; 5] = ["all", "active", "expired", "revoked", "attention"];
const SORTS: [&str; 6] = [
    "created",
    "name",
    "last_used",
    "expires",
    "status",
    "attention",
];

fn policy() -> Policy {
    Policy {
        max_lifetime_days: Some(90),
        require_description: true,
        ..Policy::default()
    }
}

/// A service whose organisation holds keys in every state, and the instant
/// its clock stays at.
async fn world(backend: &Backend) -> (TestServer, DateTime<Utc>) {
    let end = Utc::now().trunc_subsecs(3);
    let clock = manual_clock(end - Duration::days(420));
    let s = TestServer::start_with(backend, clock.clone(), |c| {
        c.last_used_flush = StdDuration::from_millis(20);
    })
    .await;
    let words = ["Alpha", "Snowfall", "bravo", "SNOWplough", "Delta", "echo"];
    let mut made: Vec<(i64, String, String, DateTime<Utc>)> = Vec::new();
    for i in 0..KEYS {
        let created = end - Duration::days(420) + Duration::days(9 * i) + Duration::hours(i);
        clock.set(created);
        let expires = match i % 5 {
            0 => None,
            1 => Some(end - Duration::days(3)),
            2 => Some(end + Duration::days(3)),
            3 => Some(end + Duration::days(200)),
            _ => Some(end + Duration::days(40)),
        };
        let body = json!({
            "name": format!("{}{:02}", words[i as usize % 6], (i * 7) % 50),
            "description": if i % 4 == 0 { "" } else { "ci" },
            "scopes": ["sessions:read"],
            "expires_at": expires,
        });
        let r = s.create_key_as(&s.admin_token, body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        let id = v["api_key"]["id"].as_str().unwrap().to_owned();
        let secret = v["secret"].as_str().unwrap().to_owned();
        made.push((i, id, secret, created));
    }
    use_revoke_rotate(&s, &clock, &made, end).await;
    clock.set(end);
    let r = s
        .http
        .put(s.url("/v1/policy"))
        .bearer_auth(&s.admin_token)
        .json(&policy())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    (s, end)
}

/// Uses some keys (long ago or lately), revokes some, rotates two.
async fn use_revoke_rotate(
    s: &TestServer,
    clock: &ManualClock,
    made: &[(i64, String, String, DateTime<Utc>)],
    end: DateTime<Utc>,
) {
    let mut used = 0;
    for (i, _, secret, created) in made {
        let at = match i % 3 {
            1 => *created + Duration::hours(1),
            2 if i % 5 != 1 => end - Duration::days(1),
            _ => continue,
        };
        clock.set(at);
        assert_eq!(s.auth(secret, None).await.status(), StatusCode::OK);
        used += 1;
    }
    // The uses are written in batches: wait until every one is stored.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let keys = all_keys(s, "").await;
        let stored = keys.iter().filter(|k| k.last_used_at.is_some()).count();
        if stored == used {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stored} of {used} uses stored"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    for (i, id, _, created) in made {
        if i % 7 == 3 {
            clock.set(*created + Duration::days(1));
            assert_eq!(s.revoke(id).await.status(), StatusCode::OK);
        }
    }
    clock.set(end);
    for (_, id, _, _) in made
        .iter()
        .filter(|(i, ..)| i % 5 == 3 && i % 7 != 3)
        .take(2)
    {
        let r = s
            .http
            .post(s.url(&format!("/v1/api-keys/{id}/rotate")))
            .bearer_auth(&s.admin_token)
            .json(&json!({"grace_seconds": 3600}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

/// Every key (with `q` if not empty), in one page.
async fn all_keys(s: &TestServer, q: &str) -> Vec<ApiKey> {
    let page = s
        .get_json(&format!("/v1/api-keys?limit=500&q={q}"), &s.admin_token)
        .await;
    assert!(page["next_cursor"].is_null(), "{page}");
    serde_json::from_value(page["data"].clone()).unwrap()
}

/// The ids of `keys` a tab shows, in a sort's order (`desc`: reversed), as
/// the TUI orders them (`tui::app::rows`), with the id breaking ties.
fn expected(keys: &[ApiKey], tab: &str, sort: &str, desc: bool, now: DateTime<Utc>) -> Vec<String> {
    let policy = policy();
    let mut rows: Vec<usize> = (0..keys.len())
        .filter(|&i| {
            let k = &keys[i];
            match tab {
                "all" => true,
                "attention" => !health::badges(k, &policy, now).is_empty(),
                status => k.status.as_str() == status,
            }
        })
        .collect();
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    match sort {
        "created" => rows.sort_by_key(|&i| (ms(keys[i].created_at), keys[i].id.clone())),
        "name" => rows.sort_by_key(|&i| (keys[i].name.to_lowercase(), keys[i].id.clone())),
        "last_used" => {
            rows.sort_by_key(|&i| (keys[i].last_used_at.map_or(-1, ms), keys[i].id.clone()))
        }
        "expires" => {
            rows.sort_by_key(|&i| (keys[i].expires_at.map_or(i64::MAX, ms), keys[i].id.clone()))
        }
        "status" => rows.sort_by_key(|&i| {
            let k = &keys[i];
            let rank = match k.status {
                KeyStatus::Active => 0,
                KeyStatus::Expired => 1,
                KeyStatus::Revoked => 2,
            };
            (rank, std::cmp::Reverse((ms(k.created_at), k.id.clone())))
        }),
        _ => health::sort_attention(&mut rows, keys, &policy, now),
    }
    if desc {
        rows.reverse();
    }
    rows.into_iter().map(|i| keys[i].id.clone()).collect()
}

/// One page's ids and its cursors.
async fn page(s: &TestServer, query: &str) -> (Vec<String>, Option<String>, Option<String>) {
    let r = s
        .get(
            &format!("/v1/api-keys?limit={PAGE}&{query}"),
            &s.admin_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    let v: Value = r.json().await.unwrap();
    let ids = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    let text = |f: &str| v[f].as_str().map(str::to_owned);
    (ids, text("next_cursor"), text("prev_cursor"))
}

async fn pages_both_ways_make_the_whole_order(backend: Backend) {
    let (s, end) = world(&backend).await;
    let mut intruders: HashSet<String> = HashSet::new();
    let mut combinations = 0;
    for tab in TABS {
        for sort in SORTS {
            if sort == "attention" && tab != "attention" {
                continue;
            }
            for order in ["asc", "desc"] {
                let keys = all_keys(&s, "").await;
                let want = expected(&keys, tab, sort, order == "desc", end);
                let base = format!("tab={tab}&sort={sort}&order={order}");
                combinations += 1;

                // Forwards, a key created after the second page.
                let mut got = Vec::new();
                let mut cursor: Option<String> = None;
                for n in 0.. {
                    let query = match &cursor {
                        Some(c) => format!("{base}&cursor={c}"),
                        None => base.clone(),
                    };
                    let (ids, next, _) = page(&s, &query).await;
                    got.extend(ids);
                    if n == 1 {
                        let body = json!({
                            "name": format!("Intruder{}", intruders.len()),
                            "description": "made while a list is read",
                            "scopes": ["sessions:read"],
                            "expires_at": end + Duration::days(30),
                        });
                        let r = s.create_key_as(&s.admin_token, body).await;
                        assert_eq!(r.status(), StatusCode::CREATED);
                        let made: Value = r.json().await.unwrap();
                        intruders.insert(made["api_key"]["id"].as_str().unwrap().to_owned());
                    }
                    match next {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                check(&got, &want, &intruders, &format!("{base} forwards"));

                // Backwards from the last page.
                let (last, _, mut before) = page(&s, &format!("{base}&from=end")).await;
                let known = |ids: &[String]| -> Vec<String> {
                    ids.iter()
                        .filter(|id| !intruders.contains(*id))
                        .cloned()
                        .collect()
                };
                let (last_known, want_known) = (known(&last), known(&want));
                assert!(
                    last.len() == PAGE.min(want.len()) && want_known.ends_with(&last_known),
                    "{base} from=end: {last:?} not the end of {want:?}"
                );
                let mut pages = vec![last];
                while let Some(b) = before {
                    let (ids, _, prev) = page(&s, &format!("{base}&before={b}")).await;
                    pages.push(ids);
                    before = prev;
                }
                let got: Vec<String> = pages.into_iter().rev().flatten().collect();
                check(&got, &want, &intruders, &format!("{base} backwards"));
            }
        }
    }
    println!(
        "{}: {combinations} orders read both ways, {} keys created meanwhile",
        backend.name,
        intruders.len()
    );
    s.stop().await;
    backend.cleanup().await;
}

/// `got` is `want` with perhaps some of the keys created meanwhile among
/// them, each key once.
fn check(got: &[String], want: &[String], intruders: &HashSet<String>, what: &str) {
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "{what}: a key twice in {got:?}");
    let known: Vec<&String> = got.iter().filter(|id| !intruders.contains(*id)).collect();
    let want: Vec<&String> = want.iter().filter(|id| !intruders.contains(*id)).collect();
    assert_eq!(known, want, "{what}");
}

async fn counts_filter_and_badges_agree_with_the_rules(backend: Backend) {
    let (s, end) = world(&backend).await;
    let policy = policy();
    let keys = all_keys(&s, "").await;
    assert_eq!(keys.len() as i64, KEYS + 2);

    // The badges the service sends are the domain's (what `keys list` shows).
    let mut badged = 0;
    for k in &keys {
        let local: Vec<&str> = health::badges(k, &policy, end)
            .iter()
            .map(|b| b.id())
            .collect();
        let sent = k.health.as_ref().expect("a listed key carries its badges");
        assert_eq!(sent, &local, "{}", k.name);
        badged += usize::from(!local.is_empty());
    }
    assert!(
        badged > 10 && badged < keys.len(),
        "{badged} keys with badges"
    );

    // Counts: each tab's is what the tab lists; the summary, the domain's.
    let counts = s.get_json("/v1/api-keys/counts", &s.admin_token).await;
    for tab in TABS {
        let listed = expected(&keys, tab, "created", false, end).len();
        assert_eq!(counts["tabs"][tab], json!(listed), "{tab}: {counts}");
        let page = s
            .get_json(&format!("/v1/api-keys?limit=500&tab={tab}"), &s.admin_token)
            .await;
        assert_eq!(page["data"].as_array().unwrap().len(), listed, "{tab}");
    }
    let summary = Summary::of(&keys, &policy, end);
    let want = json!({
        "active": summary.active, "expiring": summary.expiring, "rotate": summary.rotate,
        "unused": summary.unused, "expired": summary.expired, "rotating": summary.rotating,
        "policy": summary.policy, "attention": summary.attention,
    });
    assert_eq!(counts["summary"], want);
    for n in [
        "expiring", "rotate", "unused", "expired", "rotating", "policy",
    ] {
        assert!(
            counts["summary"][n].as_u64().unwrap() > 0,
            "no {n} key: {counts}"
        );
    }

    filter_finds_substrings(&s, &keys).await;
    bad_windows_are_400s_naming_the_field(&s).await;
    s.stop().await;
    backend.cleanup().await;
}

/// The filter: 3 characters or more through the trigram index, fewer by
/// LIKE; the same keys either way, and the counts follow it.
async fn filter_finds_substrings(s: &TestServer, keys: &[ApiKey]) {
    for q in ["Snow", "snowP", "sn", "w", "ALPHA0", "nothing-like-it"] {
        let needle = q.to_lowercase();
        let mut want: Vec<String> = keys
            .iter()
            .filter(|k| {
                k.name.to_lowercase().contains(&needle)
                    || k.prefix.to_lowercase().contains(&needle)
                    || k.description.to_lowercase().contains(&needle)
                    || k.scopes.iter().any(|s| s.contains(&needle))
            })
            .map(|k| k.id.clone())
            .collect();
        want.sort();
        let mut got: Vec<String> = all_keys(s, q).await.into_iter().map(|k| k.id).collect();
        got.sort();
        assert_eq!(got, want, "q={q}");
        let counted = s
            .get_json(&format!("/v1/api-keys/counts?q={q}"), &s.admin_token)
            .await;
        assert_eq!(counted["tabs"]["all"], json!(want.len()), "q={q}");
    }
    assert_eq!(
        all_keys(s, "Snow")
            .await
            .iter()
            .filter(|k| k.name.starts_with("Snowfall"))
            .count(),
        keys.iter()
            .filter(|k| k.name.starts_with("Snowfall"))
            .count()
    );
}

/// Bad windows are 400s naming the field.
async fn bad_windows_are_400s_naming_the_field(s: &TestServer) {
    for (query, field) in [
        ("tab=gone", "tab"),
        ("sort=colour", "sort"),
        ("sort=attention", "sort"),
        ("order=up", "order"),
        ("cursor=zzz", "cursor"),
        ("sort=name&cursor=1.key_a", "cursor"),
        ("before=1.key_'", "before"),
        ("from=start", "from"),
        ("cursor=1.key_a&from=end", "cursor"),
        ("tab=active&status=revoked", "tab"),
    ] {
        let r = s
            .get(&format!("/v1/api-keys?{query}"), &s.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["fields"].get(field).is_some(),
            "{query}: {body}"
        );
    }
}
