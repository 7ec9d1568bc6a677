//! [`UsageStore`] on both backends: the SQL of `store/usage.rs`, bound and
//! run through the guard like every other call.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{Dialect, SqlStore};
use crate::key::health::mostly_refused;
use crate::store::usage::{
    sql, AddressRow, AddressUse, NewAddress, OutcomeCounts, TopKeyRow, UsageBatch, UsageBucketRow,
    UsageRow, UsageStore, UsageTier, ADDRESSES_KEPT, OUTCOME_COUNT,
};
use crate::store::StoreResult;

fn table(tier: UsageTier) -> &'static str {
    match tier {
        UsageTier::Minute => "usage_minute",
        UsageTier::Hour => "usage_hour",
    }
}

const HOUR_MS: i64 = 3_600_000;

/// Rows a usage upsert writes at once: 9 parameters each, far below either
/// backend's limit, and a few hundred round trips fewer.
const ROWS_PER_STATEMENT: usize = 500;

/// ((key, start), (organisation, counts)): one row of an upsert.
type Summed<'a> = ((&'a str, i64), (&'a str, OutcomeCounts));

/// The batch's counts summed per key and `step` (1: as they are; an hour:
/// per hour), in key-then-time order, so that every replica takes the rows'
/// locks in one order and a statement updates each row once.
fn per_step(rows: &[UsageRow], step: i64) -> Vec<Summed<'_>> {
    let mut summed: BTreeMap<(&str, i64), (&str, OutcomeCounts)> = BTreeMap::new();
    for row in rows {
        let at = row.minute_ms.div_euclid(step) * step;
        let (_, counts) = summed
            .entry((row.key_id.as_str(), at))
            .or_insert((row.org_id.as_str(), [0; OUTCOME_COUNT]));
        for (to, from) in counts.iter_mut().zip(row.counts) {
            *to += from;
        }
    }
    summed.into_iter().collect()
}

/// One key's uses from one address in a batch, merged: (organisation,
/// first, last, uses, a good one among them).
type AddressUses<'a> = (&'a str, i64, i64, i64, bool);

/// ((key, address), its uses): one row of an address upsert.
type MergedAddress<'a> = ((&'a str, &'a str), AddressUses<'a>);

/// The batch's address uses merged per (key, address), in that order: one
/// row per statement each, and one lock order for every replica.
fn per_address(addresses: &[AddressUse]) -> Vec<MergedAddress<'_>> {
    let mut merged: BTreeMap<(&str, &str), AddressUses<'_>> = BTreeMap::new();
    for a in addresses {
        merged
            .entry((a.key_id.as_str(), a.addr.as_str()))
            .and_modify(|(_, first, last, uses, valid)| {
                *first = (*first).min(a.first_ms);
                *last = (*last).max(a.last_ms);
                *uses += a.uses;
                *valid |= a.valid;
            })
            .or_insert((a.org_id.as_str(), a.first_ms, a.last_ms, a.uses, a.valid));
    }
    merged.into_iter().collect()
}

/// The distinct keys of merged addresses (which come in key order).
fn keys_of<'a>(addresses: &[MergedAddress<'a>]) -> Vec<&'a str> {
    let mut keys: Vec<&str> = addresses.iter().map(|((key, _), _)| *key).collect();
    keys.dedup();
    keys
}

/// The outcomes that refuse a known key, as [`sql::REFUSAL_SUMS`] names them.
const REFUSALS: [&str; 4] = ["insufficient_scope", "expired", "revoked", "rate_limited"];

#[async_trait]
impl<DB: Dialect> UsageStore for SqlStore<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> String: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    for<'q, 'r> i64: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
{
    async fn record_usage(&self, batch: &UsageBatch) -> StoreResult<Vec<NewAddress>> {
        self.run("record_usage", async {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            for (table, step) in [("usage_minute", 1), ("usage_hour", HOUR_MS)] {
                let rows = per_step(&batch.rows, step);
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let text = sql::upsert(table, chunk.len());
                    let mut q = sqlx::query::<DB>(&text);
                    for ((key_id, at), (org_id, counts)) in chunk {
                        q = q.bind(*key_id).bind(*org_id).bind(*at);
                        for c in counts {
                            q = q.bind(*c);
                        }
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            // Addresses: per chunk, when each was last seen before this
            // batch (to find the new ones), then the uses added; then each
            // key trimmed to its last addresses. Three statements a chunk of
            // 500, not three round trips an address.
            let addresses = per_address(&batch.addresses);
            let mut new = Vec::new();
            for chunk in addresses.chunks(ROWS_PER_STATEMENT) {
                let keys = keys_of(chunk);
                let text = sql::addresses_of(keys.len());
                let mut q = sqlx::query::<DB>(&text);
                for key in &keys {
                    q = q.bind(*key);
                }
                let mut seen: HashMap<(String, String), i64> = HashMap::new();
                for r in q.fetch_all(&mut *tx).await? {
                    let at: i64 = r.try_get("last_seen")?;
                    seen.insert((r.try_get("key_id")?, r.try_get("addr")?), at);
                }
                for ((key, addr), (org, first, _, _, valid)) in chunk {
                    let last = seen.get(&((*key).to_owned(), (*addr).to_owned()));
                    if *valid && last.is_none_or(|t| *t < batch.new_before_ms) {
                        new.push(NewAddress {
                            key_id: (*key).to_owned(),
                            org_id: (*org).to_owned(),
                            addr: (*addr).to_owned(),
                            at_ms: *first,
                        });
                    }
                }
                let text = sql::upsert_addresses(chunk.len());
                let mut q = sqlx::query::<DB>(&text);
                for ((key, addr), (_, first, last, uses, _)) in chunk {
                    q = q
                        .bind(*key)
                        .bind(*addr)
                        .bind(*first)
                        .bind(*last)
                        .bind(*uses);
                }
                q.execute(&mut *tx).await?;
            }
            for keys in keys_of(&addresses).chunks(ROWS_PER_STATEMENT) {
                let text = sql::trim_addresses(keys.len());
                let mut q = sqlx::query::<DB>(&text);
                for key in keys {
                    q = q.bind(*key);
                }
                q.bind(ADDRESSES_KEPT).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(new)
        })
        .await
    }

    async fn claim_new_address_audit(
        &self,
        key_id: &str,
        now_ms: i64,
        window_cut_ms: i64,
        max: i64,
    ) -> StoreResult<bool> {
        self.run("claim_new_address_audit", async {
            let audits: i64 = sqlx::query_scalar::<DB, i64>(sql::CLAIM_NEW_ADDRESS)
                .bind(key_id)
                .bind(now_ms)
                .bind(window_cut_ms)
                .fetch_one(&self.pool)
                .await?;
            Ok(audits <= max)
        })
        .await
    }

    async fn prune_usage(&self, minute_before_ms: i64, hour_before_ms: i64) -> StoreResult<u64> {
        self.run("prune_usage", async {
            let mut deleted = 0;
            for (text, before) in [
                (sql::PRUNE_MINUTES, minute_before_ms),
                (sql::PRUNE_HOURS, hour_before_ms),
                (sql::PRUNE_ADDRESSES, hour_before_ms),
                (sql::PRUNE_NEW_ADDRESS, hour_before_ms),
            ] {
                let done = sqlx::query::<DB>(text)
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                deleted += DB::rows_affected(&done);
            }
            Ok(deleted)
        })
        .await
    }

    async fn refresh_refusals(
        &self,
        key_ids: &[String],
        since_ms: i64,
        now_ms: i64,
    ) -> StoreResult<u64> {
        self.run("refresh_refusals", async {
            let mut written = 0;
            for key_id in key_ids {
                let row = sqlx::query::<DB>(sql::REFUSAL_SUMS)
                    .bind(key_id.as_str())
                    .bind(since_ms)
                    .fetch_one(&self.pool)
                    .await?;
                let valid: i64 = row.try_get("valid")?;
                let refusals = REFUSALS
                    .iter()
                    .map(|&name| Ok((name, row.try_get::<i64, _>(name)?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                let refused: i64 = refusals.iter().map(|(_, n)| n).sum();
                let checks = u64::try_from(valid + refused).unwrap_or(0);
                let refused = u64::try_from(refused).unwrap_or(0);
                let done = if mostly_refused(checks, refused) {
                    // The most frequent refusal; the first named on a tie.
                    let most = refusals
                        .iter()
                        .rev()
                        .max_by_key(|(_, n)| *n)
                        .map_or("", |(name, _)| name);
                    let json = serde_json::json!({
                        "checks": checks, "refused": refused, "most": most,
                    })
                    .to_string();
                    sqlx::query::<DB>(sql::MARK_REFUSED)
                        .bind(key_id.as_str())
                        .bind(now_ms)
                        .bind(json)
                        .execute(&self.pool)
                        .await?
                } else {
                    sqlx::query::<DB>(sql::CLEAR_REFUSED)
                        .bind(key_id.as_str())
                        .execute(&self.pool)
                        .await?
                };
                written += DB::rows_affected(&done);
            }
            Ok(written)
        })
        .await
    }

    async fn refused_keys(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        self.run("refused_keys", async {
            Ok(sqlx::query_scalar::<DB, String>(sql::REFUSED_SWEEP)
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?)
        })
        .await
    }

    async fn usage_buckets(
        &self,
        tier: UsageTier,
        org_id: &str,
        key_id: Option<&str>,
        from_ms: i64,
        step_ms: i64,
    ) -> StoreResult<Vec<UsageBucketRow>> {
        self.run("usage_buckets", async {
            let text = sql::buckets(table(tier), key_id.is_some());
            let mut q = sqlx::query::<DB>(&text)
                .bind(org_id)
                .bind(from_ms)
                .bind(step_ms);
            if let Some(key_id) = key_id {
                q = q.bind(key_id);
            }
            let rows = q.fetch_all(&self.pool).await?;
            rows.iter()
                .map(|r| {
                    let mut counts = [0; 6];
                    for (i, name) in crate::store::usage::OUTCOMES.iter().enumerate() {
                        counts[i] = r.try_get::<Option<i64>, _>(*name)?.unwrap_or(0);
                    }
                    Ok(UsageBucketRow {
                        at_ms: r.try_get("bucket")?,
                        counts,
                    })
                })
                .collect()
        })
        .await
    }

    async fn usage_addresses(&self, key_id: &str) -> StoreResult<Vec<AddressRow>> {
        self.run("usage_addresses", async {
            let rows = sqlx::query::<DB>(sql::ADDRESSES)
                .bind(key_id)
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(AddressRow {
                        addr: r.try_get("addr")?,
                        first_ms: r.try_get("first_seen")?,
                        last_ms: r.try_get("last_seen")?,
                        uses: r.try_get("uses")?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn usage_top_keys(
        &self,
        tier: UsageTier,
        org_id: &str,
        from_ms: i64,
        by_refused: bool,
        limit: i64,
    ) -> StoreResult<Vec<TopKeyRow>> {
        self.run("usage_top_keys", async {
            let text = sql::top_keys(table(tier), by_refused);
            let rows = sqlx::query::<DB>(&text)
                .bind(org_id)
                .bind(from_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(TopKeyRow {
                        key_id: r.try_get("key_id")?,
                        name: r.try_get("name")?,
                        prefix: r.try_get("prefix")?,
                        checks: r.try_get::<Option<i64>, _>("checks")?.unwrap_or(0),
                        refused: r.try_get::<Option<i64>, _>("refused")?.unwrap_or(0),
                    })
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, minute_ms: i64, valid: i64) -> UsageRow {
        UsageRow {
            key_id: key.into(),
            org_id: "org".into(),
            minute_ms,
            counts: [valid, 0, 0, 0, 0, 1],
        }
    }

    /// Minutes of one hour become one hour row with their sums; the rows
    /// come in key-then-time order whatever order the batch had.
    #[test]
    fn rows_are_summed_per_step_in_key_then_time_order() {
        let rows = [
            row("b", HOUR_MS + 60_000, 1),
            row("a", 2 * HOUR_MS, 2),
            row("b", HOUR_MS, 3),
            row("a", 2 * HOUR_MS + 60_000, 4),
        ];
        let hours = per_step(&rows, HOUR_MS);
        assert_eq!(
            hours,
            vec![
                (("a", 2 * HOUR_MS), ("org", [6, 0, 0, 0, 0, 2])),
                (("b", HOUR_MS), ("org", [4, 0, 0, 0, 0, 2])),
            ]
        );
        let minutes = per_step(&rows, 1);
        assert_eq!(minutes.len(), 4);
        assert_eq!(minutes[0].0, ("a", 2 * HOUR_MS));
        assert_eq!(minutes[3].0, ("b", HOUR_MS + 60_000));
    }

    fn used(key: &str, addr: &str, first_ms: i64, last_ms: i64, valid: bool) -> AddressUse {
        AddressUse {
            key_id: key.into(),
            org_id: "org".into(),
            addr: addr.into(),
            first_ms,
            last_ms,
            uses: 2,
            valid,
        }
    }

    /// The same (key, address) twice in a batch (a batch kept after a failed
    /// write, merged with the next) is one row: earliest first, latest last,
    /// uses added, good if either was; rows in key-then-address order.
    #[test]
    fn addresses_are_merged_per_key_and_address_in_that_order() {
        let batch = [
            used("b", "10.0.0.1", 5, 6, false),
            used("a", "10.0.0.2", 3, 9, false),
            used("a", "10.0.0.2", 1, 4, true),
            used("a", "10.0.0.1", 7, 7, false),
        ];
        let merged = per_address(&batch);
        assert_eq!(
            merged,
            vec![
                (("a", "10.0.0.1"), ("org", 7, 7, 2, false)),
                (("a", "10.0.0.2"), ("org", 1, 9, 4, true)),
                (("b", "10.0.0.1"), ("org", 5, 6, 2, false)),
            ]
        );
        assert_eq!(keys_of(&merged), ["a", "b"]);
    }

    #[test]
    fn the_address_statements_number_their_parameters() {
        let upsert = sql::upsert_addresses(2);
        assert!(upsert.contains("VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10) ON"));
        assert!(!upsert.contains("$11"));
        assert!(sql::addresses_of(3).contains("key_id IN ($1, $2, $3)"));
        let trim = sql::trim_addresses(2);
        assert_eq!(trim.matches("key_id IN ($1, $2)").count(), 2);
        assert!(trim.contains("n > $3"));
    }

    #[test]
    fn an_upsert_of_several_rows_numbers_every_parameter_once() {
        let text = sql::upsert("usage_hour", 2);
        assert!(text.contains("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9), ($10, "));
        assert!(text.contains("$18)"));
        assert!(!text.contains("$19"));
    }
}
