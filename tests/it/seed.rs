//! `keydeck admin seed` (issue 12, demo data at scale): it works on a data dir
//! that does not exist yet, and its keys have a realistic spread: created
//! within the last three years, ~70 % active, 20 % expired, 10 % revoked,
//! varied scopes and last use, each with its audit entries.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{Duration, Utc};
use keydeck::key::KeyStatus;
use keydeck::store::{self, KeyFilter};

use common::bin::keydeck;
use common::Backend;

on_both_backends!(seed_on_a_fresh_data_dir_spreads_keys_like_a_real_organisation);

/// `keydeck --data-dir DIR admin [--database-url URL] seed --count N`; panics unless it exits 0.
fn seed(data_dir: &Path, database_url: Option<&str>, count: u32) {
    let mut cmd = keydeck();
    cmd.arg("--data-dir").arg(data_dir).arg("admin");
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let out = cmd
        .args(["seed", "--count", &count.to_string()])
        .output()
        .expect("run keydeck admin seed");
    assert!(
        out.status.success(),
        "keydeck admin seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn seed_on_a_fresh_data_dir_spreads_keys_like_a_real_organisation(backend: Backend) {
    // Two levels below the temp dir: nothing has created it yet.
    let fresh = backend.data_dir.path().join("never-used").join("data");
    assert!(!fresh.exists());
    let pg_url = backend.database_url_arg();
    let started = Utc::now();
    seed(&fresh, pg_url.as_deref(), 2000);
    let finished = Utc::now();
    assert!(fresh.is_dir(), "the data dir was created");

    let url = match &pg_url {
        Some(url) => url.clone(),
        None => keydeck::service::database_url(None, &fresh),
    };
    let store = store::open(&url).await.expect("open the seeded store");
    let org = store
        .org_by_name("default")
        .await
        .unwrap()
        .expect("the default organisation");
    let keys = store
        .list_keys(
            &org.id,
            &KeyFilter {
                status: None,
                q: None,
                now: finished,
                limit: 5000,
                after: None,
                changed_since: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(keys.len(), 2000);

    // Created within the last three years, none in the future.
    let oldest_allowed = started - Duration::days(3 * 365);
    for k in &keys {
        assert!(
            k.created_at >= oldest_allowed && k.created_at <= finished,
            "{} created at {}",
            k.name,
            k.created_at
        );
    }
    let oldest = keys.iter().map(|k| k.created_at).min().unwrap();
    assert!(
        oldest < started - Duration::days(365),
        "spread over years, oldest only {oldest}"
    );

    // Status shares within ±5 points of 70/20/10.
    let mut shares: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &keys {
        let status = match k.status(finished) {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        };
        *shares.entry(status).or_default() += 1;
    }
    for (status, want) in [("active", 70.0), ("expired", 20.0), ("revoked", 10.0)] {
        let got = *shares.get(status).unwrap_or(&0) as f64 * 100.0 / 2000.0;
        assert!(
            (got - want).abs() <= 5.0,
            "{status}: {got:.1} % of keys, want {want} % ± 5 ({shares:?})"
        );
    }
    // Revoked keys say when and by whom, after they were created.
    for k in keys.iter().filter(|k| k.revoked_at.is_some()) {
        assert!(k.revoked_by.as_deref().is_some_and(|b| !b.is_empty()));
        assert!(k.revoked_at.unwrap() >= k.created_at);
    }

    // Varied scopes and last use; last use never before creation or after now.
    let scope_sets: BTreeSet<Vec<String>> = keys.iter().map(|k| k.scopes.clone()).collect();
    assert!(scope_sets.len() >= 3, "scope sets: {scope_sets:?}");
    assert!(keys.iter().all(|k| !k.scopes.is_empty()));
    let used: Vec<_> = keys
        .iter()
        .filter_map(|k| k.last_used_at.map(|at| (k, at)))
        .collect();
    assert!(
        !used.is_empty() && used.len() < keys.len(),
        "some used, some never"
    );
    for (k, at) in used {
        assert!(
            at >= k.created_at && at <= finished,
            "{} last used {at}",
            k.name
        );
    }

    // Names look like integrations, with a suffix since 2000 exceed the list.
    let names: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert!(names.contains("GitHub Actions deploy #1"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("Datadog agent #")));
    let bases: BTreeSet<&str> = names
        .iter()
        .map(|n| n.rsplit_once(" #").map_or(*n, |(base, _)| base))
        .collect();
    assert!(bases.len() >= 20, "{bases:?}");

    // Each key has its creation audited, each revoked key its revocation.
    let audit = store.list_audit(&org.id, 10_000, None).await.unwrap();
    let created: BTreeSet<&str> = audit
        .iter()
        .filter(|a| a.event.action == "api_key.created")
        .map(|a| a.event.api_key_id.as_str())
        .collect();
    assert_eq!(created.len(), 2000);
    assert!(keys.iter().all(|k| created.contains(k.id.as_str())));
    let revoked = audit
        .iter()
        .filter(|a| a.event.action == "api_key.revoked")
        .count();
    assert_eq!(revoked, shares["revoked"]);

    store.close().await;
    backend.cleanup().await;
}

on_both_backends!(a_seed_of_several_batches_writes_every_key_once_and_the_audit_log_in_order);

/// More keys than one batch of the streaming seed (5 000): every key is
/// written once, each with its creation audited, and the audit log reads in
/// order of time although each batch's entries arrive unsorted.
async fn a_seed_of_several_batches_writes_every_key_once_and_the_audit_log_in_order(
    backend: Backend,
) {
    const COUNT: usize = 11_000;
    let data_dir = backend.data_dir.path().join("data");
    let pg_url = backend.database_url_arg();
    seed(&data_dir, pg_url.as_deref(), COUNT as u32);

    let url = match &pg_url {
        Some(url) => url.clone(),
        None => keydeck::service::database_url(None, &data_dir),
    };
    let store = store::open(&url).await.expect("open the seeded store");
    let org = store.org_by_name("default").await.unwrap().unwrap();
    let keys = store
        .list_keys(
            &org.id,
            &KeyFilter {
                status: None,
                q: None,
                now: Utc::now(),
                limit: 20_000,
                after: None,
                changed_since: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(keys.len(), COUNT);
    let names: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names.len(), COUNT, "every key once, each name once");
    assert!(
        names.contains("Jenkins nightly #393"),
        "the last batch's last name"
    );

    let audit = store.list_audit(&org.id, 20_000, None).await.unwrap();
    let created = audit
        .iter()
        .filter(|a| a.event.action == "api_key.created")
        .count();
    assert_eq!(created, COUNT);
    // Newest first by id, so times never increase down the list.
    let out_of_order = audit
        .windows(2)
        .filter(|w| w[0].event.at < w[1].event.at)
        .count();
    assert_eq!(out_of_order, 0, "audit entries out of time order");
    if let Some(url) = &pg_url {
        // A load this large gathers the planner's statistics itself: COPY
        // leaves none, and without them a tab's first page at a million
        // keys was a scan of every key (issue 19).
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        let columns: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stats WHERE tablename = 'api_keys'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(columns > 0, "no statistics on api_keys after the seed");
        sqlx::Connection::close(conn).await.unwrap();
    }
    store.close().await;
    backend.cleanup().await;
}
