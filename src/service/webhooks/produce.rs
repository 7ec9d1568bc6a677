//! The events the service makes itself, from the time: `api_key.expiring`
//! (at the policy's threshold, and again a day before), `api_key.expired`
//! and `digest.daily`. Each is put in the outbox with a `dedupe` text (the
//! key and the threshold, the organisation and the day): however many
//! replicas notice it, the outbox keeps one.

use chrono::{DateTime, Duration, Timelike, Utc};
use serde_json::{json, Value};

use crate::key::webhook as event;
use crate::store::{
    key_payload, new_event, Anchor, KeyQuery, KeySort, KeyTab, Once, Policy, Store, StoreResult,
};

/// Keys looked at per organisation and kind on each scan.
const SCAN_LIMIT: u32 = 200;
/// A key that expired longer ago than this gets no `api_key.expired` (a new
/// endpoint is not told of every key that ever expired).
const EXPIRED_WITHIN: Duration = Duration::days(1);
/// Items of the Attention list in the digest.
const DIGEST_ATTENTION: u32 = 5;
/// The digest lists the keys expiring within this.
const DIGEST_EXPIRING: Duration = Duration::days(7);

/// One scan of every organisation with an endpoint.
pub async fn scan(store: &dyn Store, now: DateTime<Utc>, digest_hour: u32) -> StoreResult<usize> {
    let mut made = 0;
    for org in store.webhooks().orgs_with_endpoints().await? {
        let policy = store.policy(&org).await?;
        made += expiring_and_expired(store, &org, &policy, now).await?;
        if now.hour() >= digest_hour {
            made += digest(store, &org, &policy, now).await? as usize;
        }
    }
    Ok(made)
}

fn window(
    tab: KeyTab,
    sort: KeySort,
    descending: bool,
    policy: &Policy,
    now: DateTime<Utc>,
    limit: u32,
) -> KeyQuery {
    KeyQuery {
        tab,
        sort,
        descending,
        q: None,
        now,
        policy: *policy,
        limit,
        anchor: Anchor::Start,
        changed_since: None,
    }
}

async fn expiring_and_expired(
    store: &dyn Store,
    org: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut made = 0;
    let threshold = Duration::days(i64::from(policy.expiring_within_days));
    let soonest = store
        .list_window(
            org,
            &window(
                KeyTab::Active,
                KeySort::Expires,
                false,
                policy,
                now,
                SCAN_LIMIT,
            ),
        )
        .await?;
    for k in soonest.iter().map(|w| &w.key) {
        let Some(expires) = k.expires_at else {
            continue;
        };
        if expires <= now || expires - now > threshold {
            continue;
        }
        let (mark, which) = if expires - now > Duration::days(1) {
            (format!("{}d", policy.expiring_within_days), "policy")
        } else {
            ("1d".to_owned(), "one_day")
        };
        let data = json!({
            "api_key": key_payload(k, now),
            "expires_at": expires,
            "threshold": which,
            "expiring_within_days": policy.expiring_within_days,
        });
        // Made only before the key expires: kept (its once) until then.
        let once = Once {
            dedupe: format!("{}:{}:{mark}", event::API_KEY_EXPIRING, k.id),
            until: expires,
        };
        let e = new_event(org, event::API_KEY_EXPIRING, now, data, Some(once));
        made += store.webhooks().enqueue_event(&e, None).await? as usize;
    }
    let latest = store
        .list_window(
            org,
            &window(
                KeyTab::Expired,
                KeySort::Expires,
                true,
                policy,
                now,
                SCAN_LIMIT,
            ),
        )
        .await?;
    for k in latest.iter().map(|w| &w.key) {
        let Some(expires) = k.expires_at else {
            continue;
        };
        if expires > now || now - expires > EXPIRED_WITHIN || k.revoked_at.is_some() {
            continue;
        }
        let data = json!({ "api_key": key_payload(k, now), "expired_at": expires });
        let once = Once {
            dedupe: format!("{}:{}", event::API_KEY_EXPIRED, k.id),
            until: expires + EXPIRED_WITHIN,
        };
        let e = new_event(org, event::API_KEY_EXPIRED, now, data, Some(once));
        made += store.webhooks().enqueue_event(&e, None).await? as usize;
    }
    Ok(made)
}

/// The organisation's digest of the day, once.
async fn digest(
    store: &dyn Store,
    org: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let c = store.key_counts(org, None, policy, now).await?;
    let attention = store
        .list_window(
            org,
            &window(
                KeyTab::Attention,
                KeySort::Attention,
                false,
                policy,
                now,
                DIGEST_ATTENTION,
            ),
        )
        .await?;
    let soonest = store
        .list_window(
            org,
            &window(KeyTab::Active, KeySort::Expires, false, policy, now, 50),
        )
        .await?;
    let expiring: Vec<Value> = soonest
        .iter()
        .map(|w| &w.key)
        .filter(|k| {
            k.expires_at
                .is_some_and(|e| e > now && e - now <= DIGEST_EXPIRING)
        })
        .map(|k| key_payload(k, now))
        .collect();
    let data = json!({
        "date": now.date_naive().to_string(),
        "counts": {
            "all": c.all, "active": c.active, "expired": c.expired, "revoked": c.revoked,
            "attention": c.attention, "expiring": c.expiring, "rotate": c.rotate,
            "unused": c.unused, "rotating": c.rotating, "policy": c.policy,
        },
        "attention": attention.iter().map(|w| key_payload(&w.key, now)).collect::<Vec<_>>(),
        "expiring_within_7_days": expiring,
    });
    let day = now.date_naive();
    let once = Once {
        dedupe: format!("{}:{org}:{day}", event::DIGEST_DAILY),
        until: (day + Duration::days(1))
            .and_time(chrono::NaiveTime::MIN)
            .and_utc(),
    };
    let e = new_event(org, event::DIGEST_DAILY, now, data, Some(once));
    store.webhooks().enqueue_event(&e, None).await
}
