//! Demo data: keys named after real-looking integrations, with a believable
//! history (created, expired, revoked, last used) and their audit entries.

use chrono::{DateTime, Duration, Utc};

use super::{org_named, AccountsError, Result};
use crate::audit_action::AuditAction;
use crate::clock::Clock;
use crate::key::{new_id, SecretFormat, SCOPES};
use crate::store::{AuditEvent, NewKey, SeedBatch, SeedKey, Store};

/// Integrations demo keys are named after, with what they do.
const DEMO_NAMES: &[(&str, &str)] = &[
    ("GitHub Actions deploy", "Deploys main to production"),
    ("Datadog agent", "Ships service metrics"),
    ("Stripe webhook relay", "Forwards Stripe events to billing"),
    ("Terraform Cloud", "Provisions infrastructure"),
    (
        "Grafana dashboards",
        "Read-only metrics for the ops dashboard",
    ),
    ("Billing worker", "Nightly invoice export"),
    ("Snowflake sync", "Hourly export to the warehouse"),
    ("PagerDuty integration", "Opens incidents from alerts"),
    ("Slack bot", "Posts key events to #security"),
    ("Zapier automation", ""),
    ("Segment source", "Product analytics events"),
    ("CircleCI pipeline", "Runs the integration suite"),
    (
        "Mobile backend",
        "Session management for the iOS and Android apps",
    ),
    ("Support console", "Lets support staff look up sessions"),
    ("Splunk forwarder", "Ships audit logs to the SIEM"),
    ("Okta SCIM provisioning", "Syncs users from the directory"),
    ("Vercel preview builds", ""),
    ("Sentry release hook", "Marks releases in Sentry"),
    ("Airflow DAGs", "Batch jobs in the data platform"),
    ("Staging smoke tests", "Runs after every staging deploy"),
    ("k6 load test", "Runs before each release"),
    ("Partner API (Acme Corp)", "Acme Corp's read access"),
    ("Zendesk app", "Shows sessions next to tickets"),
    ("Jenkins nightly", "Legacy nightly build"),
    ("Fivetran connector", "Loads resources into the warehouse"),
    ("Retool admin panel", "Internal tools"),
    ("HubSpot sync", "Keeps customer records in step"),
    ("Auth0 migration", "One-off user import"),
];

/// Scope sets demo keys get, the narrow ones most often (as in practice).
const DEMO_SCOPES: &[&[&str]] = &[
    &["resources:read"],
    &["sessions:read"],
    &["sessions:read", "sessions:write"],
    &["audit_logs:read"],
    &["audit_logs:read", "resources:read"],
    &["resources:read", "sessions:read"],
    &["full_access"],
];

/// Who created and revoked demo keys.
const DEMO_PEOPLE: &[&str] = &[
    "maya@example.com",
    "jonas@example.com",
    "priya@example.com",
    "sam@example.com",
];

/// Demo keys are created within this many days before now.
pub const SEED_MAX_AGE_DAYS: i64 = 3 * 365;

/// A small PRNG (SplitMix64) seeded from the OS: demo data needs spread, not secrecy.
struct Spread(u64);

impl Spread {
    fn from_os() -> Self {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("the OS random number generator failed");
        Self(u64::from_le_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the bias is negligible for demo data).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len() as u64) as usize]
    }
}

/// A time `fraction` of the way from `from` to `to`.
fn between(from: DateTime<Utc>, to: DateTime<Utc>, fraction: f64) -> DateTime<Utc> {
    let span = (to - from).num_milliseconds().max(0) as f64;
    from + Duration::milliseconds((span * fraction) as i64)
}

/// When a demo key was created, expires, was revoked (and by whom) and last used.
struct DemoHistory {
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked: Option<(DateTime<Utc>, String)>,
    last_used_at: Option<DateTime<Utc>>,
}

/// When demo key `i` of `count` was created: the keys in order of creation,
/// each at a random moment of its own equal share of the three years up to
/// a minute ago (so that its history fits before now).
fn created_at(rng: &mut Spread, i: u32, count: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let span_ms = (SEED_MAX_AGE_DAYS * 86_400_000 - 60_000) as f64;
    let share = span_ms / f64::from(count.max(1));
    let before = (f64::from(count - 1 - i) + rng.unit()) * share;
    now - Duration::milliseconds(60_000 + before as i64)
}

/// A demo key's history. `slot` picks its status: 0-6 of every ten active,
/// 7-8 expired, 9 revoked.
fn demo_history(
    rng: &mut Spread,
    slot: u32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DemoHistory {
    let mut expires_at = match rng.below(2) {
        0 => None,
        _ => Some(now + Duration::days(7 + rng.below(358) as i64)),
    };
    let mut revoked = None;
    // Its last moment of use: now, or when it expired or was revoked.
    let mut end = now;
    match slot {
        7 | 8 => {
            let at = between(
                created_at,
                now - Duration::seconds(1),
                0.05 + 0.95 * rng.unit(),
            );
            expires_at = Some(at);
            end = at;
        }
        9 => {
            let at = between(created_at, now, 0.05 + 0.95 * rng.unit());
            revoked = Some((at, rng.pick(DEMO_PEOPLE).to_string()));
            end = at;
        }
        _ => {}
    }
    // A quarter never used; the rest last used shortly before their end.
    let last_used_at =
        (rng.below(4) != 0).then(|| between(created_at, end, 1.0 - rng.unit().powi(4)).min(end));
    DemoHistory {
        created_at,
        expires_at,
        revoked,
        last_used_at,
    }
}

/// One demo key, its history and audit entries (see [`demo_history`]): its
/// creation, and its revocation (if any) into `later` until its time comes.
#[allow(clippy::too_many_arguments)]
fn demo_key(
    rng: &mut Spread,
    org_id: &str,
    (name, description): (String, &str),
    slot: u32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    format: &SecretFormat,
    audit: &mut Vec<AuditEvent>,
    later: &mut Later,
) -> SeedKey {
    let DemoHistory {
        created_at,
        expires_at,
        revoked,
        last_used_at,
    } = demo_history(rng, slot, created_at, now);
    let secret = format.generate();
    let scopes = rng
        .pick(DEMO_SCOPES)
        .iter()
        .filter(|s| SCOPES.iter().any(|c| c.id == **s))
        .map(|s| (*s).to_owned())
        .collect();
    let created_by = (*rng.pick(DEMO_PEOPLE)).to_owned();
    let key = NewKey {
        id: new_id("key_"),
        org_id: org_id.to_owned(),
        name,
        description: description.to_owned(),
        prefix: format.display_prefix(&secret),
        digest: secret.digest(),
        scopes,
        created_at,
        created_by: created_by.clone(),
        expires_at,
        secret_pending: false,
    };
    let created = AuditEvent {
        org_id: org_id.to_owned(),
        at: created_at,
        actor_kind: "user".into(),
        actor_id: "seed".into(),
        actor_name: created_by,
        action: AuditAction::ApiKeyCreated.to_string(),
        api_key_id: key.id.clone(),
        remote_addr: None,
        details: serde_json::json!({ "name": key.name, "seeded": true }),
    };
    // What happened before this key's creation goes first: the log is
    // written in order of time.
    later.due(created_at, audit);
    if let Some((at, by)) = &revoked {
        later.push(AuditEvent {
            at: *at,
            actor_name: by.clone(),
            action: AuditAction::ApiKeyRevoked.to_string(),
            ..created.clone()
        });
    }
    audit.push(created);
    SeedKey {
        key,
        last_used_at,
        revoked,
    }
}

/// Audit entries of keys already built that happen later than the keys
/// built so far (revocations), earliest first: each goes into the log once
/// the keys reach its time, so the seed writes the audit log in order of
/// time without sorting it. Holds the revocations pending at one moment, a
/// few per cent of the keys.
#[derive(Default)]
struct Later {
    pending: std::collections::BinaryHeap<std::cmp::Reverse<Pending>>,
    pushed: u64,
}

/// An audit entry waiting in [`Later`], ordered by time (then by arrival).
struct Pending {
    at: DateTime<Utc>,
    seq: u64,
    event: AuditEvent,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Later {
    fn push(&mut self, event: AuditEvent) {
        self.pushed += 1;
        self.pending.push(std::cmp::Reverse(Pending {
            at: event.at,
            seq: self.pushed,
            event,
        }));
    }

    /// The entries up to `until` (all of them: `None`) into `audit`, in order.
    fn due_until(&mut self, until: Option<DateTime<Utc>>, audit: &mut Vec<AuditEvent>) {
        while let Some(std::cmp::Reverse(next)) = self.pending.peek() {
            if until.is_some_and(|t| next.at > t) {
                return;
            }
            if let Some(std::cmp::Reverse(next)) = self.pending.pop() {
                audit.push(next.event);
            }
        }
    }

    fn due(&mut self, until: DateTime<Utc>, audit: &mut Vec<AuditEvent>) {
        self.due_until(Some(until), audit);
    }
}

/// Keys built and sent to the store at a time: what the seed holds in
/// memory, whatever the count.
const SEED_BATCH: u32 = 5000;

/// Batches in flight between the generator and the store.
const BATCHES_AHEAD: usize = 2;

/// Creates `count` demo keys in `org_name` in one transaction: created within
/// the last three years, 70 % active, 20 % expired and 10 % revoked, with
/// varied scopes and last use, named after real-looking integrations. Their
/// secrets are discarded. Built [`SEED_BATCH`] keys at a time on a thread of
/// their own while the store writes the previous batch, so memory stays
/// bounded for any count.
pub async fn seed(store: &dyn Store, org_name: &str, count: u32, clock: &dyn Clock) -> Result<u32> {
    let org = org_named(store, org_name).await?;
    let now = clock.now();
    let (batches, received) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
    let generator = tokio::task::spawn_blocking(move || {
        let format = SecretFormat::default();
        let mut rng = Spread::from_os();
        let mut later = Later::default();
        let mut start = 0;
        while start < count {
            let end = start.saturating_add(SEED_BATCH).min(count);
            let mut batch = demo_batch(
                &mut rng,
                &org.id,
                start..end,
                count,
                now,
                &format,
                &mut later,
            );
            if end == count {
                later.due_until(None, &mut batch.audit);
            }
            if batches.blocking_send(batch).is_err() {
                return; // the store gave up; its error is reported
            }
            start = end;
        }
    });
    let inserted = store.insert_seed_keys(received, u64::from(count)).await;
    generator
        .await
        .map_err(|e| AccountsError::Invalid(format!("building the demo keys failed: {e}")))?;
    inserted?;
    if count <= DEMO_USAGE_MAX_KEYS {
        seed_usage(store, &org_name_id(store, org_name).await?, count, now).await?;
    }
    Ok(count)
}

/// Demo usage is made for seeds of at most this many keys (the bulk loads stay bulk).
const DEMO_USAGE_MAX_KEYS: u32 = 1000;

async fn org_name_id(store: &dyn Store, org_name: &str) -> Result<String> {
    Ok(org_named(store, org_name).await?.id)
}

/// Plausible usage for the organisation's newest active keys (at most 50 of
/// the `count` just seeded): 30 days of checks with a daily rhythm (busy in
/// the afternoon UTC, quiet at night), a few bursts of refused checks (a
/// client asking for a scope its key lacks), and one to three client
/// addresses each, so that a newcomer sees the sparklines at once.
async fn seed_usage(store: &dyn Store, org_id: &str, count: u32, now: DateTime<Utc>) -> Result<()> {
    use crate::store::usage::{AddressUse, UsageBatch, UsageRow};
    let filter = crate::store::KeyFilter {
        status: Some(crate::key::KeyStatus::Active),
        q: None,
        now,
        limit: count.min(50),
        after: None,
        changed_since: None,
    };
    let keys = store.list_keys(org_id, &filter).await?;
    let mut rng = Spread::from_os();
    let mut batch = UsageBatch {
        new_before_ms: i64::MIN,
        ..UsageBatch::default()
    };
    const HOUR: i64 = 3_600_000;
    let this_hour = now.timestamp_millis().div_euclid(HOUR) * HOUR;
    for key in &keys {
        let per_hour = 5.0 + rng.below(300) as f64;
        let refuses = rng.below(4) == 0;
        for h in 0..30 * 24 {
            let at = this_hour - h * HOUR;
            let hour_of_day = at.div_euclid(HOUR).rem_euclid(24) as f64;
            // Peak at 14:00 UTC, a tenth of it at 02:00.
            let rhythm = 0.55 + 0.45 * ((hour_of_day - 14.0) / 24.0 * std::f64::consts::TAU).cos();
            let valid = (per_hour * rhythm * (0.7 + 0.6 * rng.unit())) as i64;
            let refused = if refuses && rng.below(40) == 0 {
                20 + rng.below(200) as i64
            } else {
                0
            };
            // The last day in 10-minute steps (the 1h and 24h windows), older hours at once.
            let steps: i64 = if h < 24 { 6 } else { 1 };
            for s in 0..steps {
                let minute_ms = at + s * (HOUR / steps);
                if minute_ms > now.timestamp_millis() {
                    continue;
                }
                batch.rows.push(UsageRow {
                    key_id: key.id.clone(),
                    org_id: org_id.to_owned(),
                    minute_ms,
                    counts: [valid / steps, refused / steps, 0, 0, 0, 0],
                });
            }
        }
        for a in 0..1 + rng.below(3) {
            let last = now - Duration::minutes(rng.below(180) as i64);
            batch.addresses.push(AddressUse {
                key_id: key.id.clone(),
                org_id: org_id.to_owned(),
                addr: format!("10.0.{}.{}", 1 + rng.below(20), 2 + a * 17 + rng.below(15)),
                first_ms: (last - Duration::days(1 + rng.below(60) as i64)).timestamp_millis(),
                last_ms: last.timestamp_millis(),
                uses: 100 + rng.below(10_000) as i64,
                valid: true,
            });
        }
    }
    batch
        .rows
        .sort_by(|a, b| (&a.key_id, a.minute_ms).cmp(&(&b.key_id, b.minute_ms)));
    batch
        .addresses
        .sort_by(|a, b| (&a.key_id, &a.addr).cmp(&(&b.key_id, &b.addr)));
    store.usage().record_usage(&batch).await?;
    // The `refused` badge's marks, as the service's flusher would write them.
    let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
    let since = now - Duration::hours(crate::key::health::REFUSED_WINDOW_HOURS);
    store
        .usage()
        .refresh_refusals(&ids, since.timestamp_millis(), now.timestamp_millis())
        .await?;
    Ok(())
}

/// Demo keys number `range` of `count` (in order of creation), with their
/// audit entries that are due (in order of time, after every earlier batch's).
fn demo_batch(
    rng: &mut Spread,
    org_id: &str,
    range: std::ops::Range<u32>,
    count: u32,
    now: DateTime<Utc>,
    format: &SecretFormat,
    later: &mut Later,
) -> SeedBatch {
    let mut batch = SeedBatch {
        keys: Vec::with_capacity(range.len()),
        audit: Vec::with_capacity(range.len() * 11 / 10),
    };
    for i in range {
        let (name, description) = DEMO_NAMES[i as usize % DEMO_NAMES.len()];
        let name = if count as usize > DEMO_NAMES.len() {
            format!("{name} #{}", i as usize / DEMO_NAMES.len() + 1)
        } else {
            name.to_owned()
        };
        let created = created_at(rng, i, count, now);
        let key = demo_key(
            rng,
            org_id,
            (name, description),
            i % 10,
            created,
            now,
            format,
            &mut batch.audit,
            later,
        );
        batch.keys.push(key);
    }
    batch
}
