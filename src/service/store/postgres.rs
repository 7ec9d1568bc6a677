//! PostgreSQL backend: for several `keydeck serve` replicas sharing one database.
//!
//! Key checks may be answered from each replica's key cache; every write that
//! changes what they answer waits, before it returns, until every replica's
//! cache has let go of it (`service::keycache::postgres`), so a revocation
//! through one replica is seen by every other on its next key check.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};

use super::sql;
use super::sync_cursor::CursorKey;
use super::*;

/// `migrations/postgres/*.sql`, embedded at build time.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    /// Makes change cursors opaque (`sync_cursor`), the same on every replica.
    cursor_key: CursorKey,
}

/// The name of the sync cursors' secret in `server_secrets`.
const SYNC_CURSOR_SECRET: &str = "sync_cursor";

/// The sync cursors' key, shared by every replica: the first replica to
/// start makes its secret, the others read that one.
async fn load_cursor_key(pool: &PgPool) -> StoreResult<CursorKey> {
    let mut fresh = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(fresh.as_mut_slice())
        .map_err(|e| StoreError::Corrupt(format!("the OS random number generator failed: {e}")))?;
    sqlx::query(sql::PG_ADD_SERVER_SECRET)
        .bind(SYNC_CURSOR_SECRET)
        .bind(fresh.as_slice())
        .bind(ms(Utc::now()))
        .execute(pool)
        .await?;
    let secret = zeroize::Zeroizing::new(
        sqlx::query_scalar::<_, Vec<u8>>(sql::PG_SERVER_SECRET)
            .bind(SYNC_CURSOR_SECRET)
            .fetch_one(pool)
            .await?,
    );
    if secret.len() < 32 {
        return Err(StoreError::Corrupt(format!(
            "the {SYNC_CURSOR_SECRET:?} server secret is {} bytes, not 32",
            secret.len()
        )));
    }
    Ok(CursorKey::new(&secret))
}

impl PgStore {
    /// Connects to a `postgres://` URL and migrates the database.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // The guard decides how long a call may wait: 1.5 s when the database
        // answers nobody, up to its patience (10 s) while it answers others,
        // as when every connection is busy under load. The pool's own acquire
        // timeout must not cut that patience short. After an outage the pool
        // reconnects on the next call, and a dead connection is found by the
        // test before it is handed out.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(true)
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let cursor_key = load_cursor_key(&pool).await?;
        Ok(Self { pool, cursor_key })
    }

    /// After a change to what key checks answer has committed: waits until
    /// every replica's key cache has let go of it (see `service::keycache`).
    async fn settle(&self) -> StoreResult<()> {
        crate::service::keycache::postgres::settle(&self.pool).await?;
        Ok(())
    }

    async fn create_key_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        key: &NewKey,
    ) -> StoreResult<KeyRecord> {
        sqlx::query_as::<_, KeyRow>(sql::INSERT_KEY)
            .bind(&key.id)
            .bind(&key.org_id)
            .bind(&key.name)
            .bind(&key.description)
            .bind(&key.prefix)
            .bind(key.digest.as_slice())
            .bind(key.scopes.join(" "))
            .bind(ms(key.created_at))
            .bind(&key.created_by)
            .bind(key.expires_at.map(ms))
            .fetch_one(&mut **tx)
            .await?
            .try_into()
    }
}

async fn insert_user<'e, E>(exec: E, user: &NewUser) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    sqlx::query(sql::INSERT_USER)
        .bind(&user.id)
        .bind(&user.org_id)
        .bind(&user.email)
        .bind(user.role.as_str())
        .bind(user.token_digest.as_slice())
        .bind(ms(user.created_at))
        .execute(exec)
        .await?;
    Ok(())
}

async fn insert_audit<'e, E>(exec: E, a: &AuditEvent) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    sqlx::query(sql::INSERT_AUDIT)
        .bind(&a.org_id)
        .bind(ms(a.at))
        .bind(&a.actor_kind)
        .bind(&a.actor_id)
        .bind(&a.actor_name)
        .bind(&a.action)
        .bind(&a.api_key_id)
        .bind(&a.remote_addr)
        .bind(a.details.to_string())
        .execute(exec)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn create_org(&self, org: &Org) -> StoreResult<()> {
        sqlx::query(sql::INSERT_ORG)
            .bind(&org.id)
            .bind(&org.name)
            .bind(org.plan.as_str())
            .bind(ms(org.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        sqlx::query_as::<_, OrgRow>(sql::LIST_ORGS)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Org::try_from)
            .collect()
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
        sqlx::query_as::<_, OrgRow>(sql::ORG_BY_NAME)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(Org::try_from)
            .transpose()
    }

    async fn set_plan(&self, org_id: &str, plan: Plan) -> StoreResult<bool> {
        let done = sqlx::query(sql::SET_PLAN)
            .bind(plan.as_str())
            .bind(org_id)
            .execute(&self.pool)
            .await?;
        self.settle().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_user(&self, user: &NewUser) -> StoreResult<()> {
        insert_user(&self.pool, user).await
    }

    async fn add_user(&self, user: &NewUser, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_user(&mut *tx, user).await?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_users(&self, org_id: Option<&str>) -> StoreResult<Vec<User>> {
        sqlx::query_as::<_, UserRow>(sql::LIST_USERS)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(User::try_from)
            .collect()
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        sqlx::query_as::<_, UserRow>(sql::USER_BY_EMAIL)
            .bind(email)
            .fetch_optional(&self.pool)
            .await?
            .map(User::try_from)
            .transpose()
    }

    async fn change_user(
        &self,
        user_id: &str,
        change: &UserChange,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let query = match change {
            UserChange::Remove { at } => sqlx::query(sql::REMOVE_USER).bind(ms(*at)),
            UserChange::SetRole(role) => sqlx::query(sql::SET_USER_ROLE).bind(role.as_str()),
            UserChange::SetToken(digest) => {
                sqlx::query(sql::SET_USER_TOKEN_BY_ID).bind(digest.as_ref().map(|d| d.to_vec()))
            }
        };
        let changed = query.bind(user_id).execute(&mut *tx).await?.rows_affected();
        if changed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_user_token(&self, email: &str, token_digest: &[u8; 32]) -> StoreResult<bool> {
        let done = sqlx::query(sql::SET_USER_TOKEN_BY_EMAIL)
            .bind(token_digest.as_slice())
            .bind(email)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn user_by_token(&self, token_digest: &[u8; 32]) -> StoreResult<Option<(User, Org)>> {
        sqlx::query_as::<_, UserOrgRow>(sql::USER_BY_TOKEN)
            .bind(token_digest.as_slice())
            .fetch_optional(&self.pool)
            .await?
            .map(UserOrgRow::split)
            .transpose()
    }

    async fn create_key(
        &self,
        key: &NewKey,
        idempotency: Option<&Idempotency<'_>>,
        audit: &AuditEvent,
    ) -> StoreResult<CreateOutcome> {
        let mut tx = self.pool.begin().await?;
        if let Some(Idempotency {
            key: idem,
            request_digest,
        }) = idempotency
        {
            // Idempotency keys are remembered for a day, as at Stripe;
            // the organisation's older ones are forgotten here.
            sqlx::query(sql::FORGET_OLD_IDEMPOTENCY_KEYS)
                .bind(&key.org_id)
                .bind(ms(key.created_at - IDEMPOTENCY_WINDOW))
                .execute(&mut *tx)
                .await?;
            let claimed = sqlx::query(sql::CLAIM_IDEMPOTENCY_KEY)
                .bind(&key.org_id)
                .bind(*idem)
                .bind(&key.id)
                .bind(ms(key.created_at))
                .bind(request_digest.as_slice())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if claimed == 0 {
                // Rows from before request digests were kept have none: a repeat.
                let stored: Option<Vec<u8>> = sqlx::query_scalar(sql::IDEMPOTENCY_REQUEST_DIGEST)
                    .bind(&key.org_id)
                    .bind(*idem)
                    .fetch_one(&mut *tx)
                    .await?;
                if stored.is_some_and(|d| d.as_slice() != request_digest.as_slice()) {
                    tx.rollback().await?;
                    return Ok(CreateOutcome::Reused);
                }
                let earlier = sqlx::query_as::<_, KeyRow>(sql::KEY_BY_IDEMPOTENCY_KEY)
                    .bind(&key.org_id)
                    .bind(*idem)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Ok(CreateOutcome::Repeat(earlier.try_into()?));
            }
        }
        let created = self.create_key_in(&mut tx, key).await?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(CreateOutcome::Created(created))
    }

    async fn list_keys(&self, org_id: &str, f: &KeyFilter) -> StoreResult<Vec<KeyRecord>> {
        sqlx::query_as::<_, KeyRow>(sql::LIST_KEYS)
            .bind(org_id)
            .bind(f.after.as_ref().map(|c| c.created_at_ms))
            .bind(f.after.as_ref().map(|c| c.id.as_str()))
            .bind(f.status.map(|s| s.as_str()).unwrap_or("any"))
            .bind(ms(f.now))
            .bind(f.q.as_deref().map(like_pattern))
            .bind(i64::from(f.limit))
            .bind(
                f.changed_since
                    .map(|c| self.cursor_key.open(org_id, c as u64) as i64),
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(KeyRecord::try_from)
            .collect()
    }

    /// Opaque: sealed for the organisation (`sync_cursor`), opened again by
    /// [`list_keys`](Self::list_keys). Anything else opens to some value,
    /// which lists more or fewer of the organisation's own keys, never another's.
    async fn change_cursor(&self, org_id: &str) -> StoreResult<i64> {
        let cursor = sqlx::query_scalar::<_, i64>(sql::PG_CHANGE_CURSOR)
            .bind(org_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(self.cursor_key.seal(org_id, cursor as u64) as i64)
    }

    async fn get_key(&self, org_id: &str, id: &str) -> StoreResult<Option<KeyRecord>> {
        sqlx::query_as::<_, KeyRow>(sql::GET_KEY)
            .bind(org_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(KeyRecord::try_from)
            .transpose()
    }

    async fn revoke_key(
        &self,
        org_id: &str,
        id: &str,
        at: DateTime<Utc>,
        by: &str,
        audit: &AuditEvent,
    ) -> StoreResult<Option<KeyRecord>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as::<_, KeyRow>(sql::REVOKE_KEY)
            .bind(ms(at))
            .bind(by)
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(row) => {
                insert_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                self.settle().await?;
                Ok(Some(row.try_into()?))
            }
            None => {
                tx.rollback().await?;
                // Revoked already, perhaps by a call still settling: this
                // answer too waits until the replicas have caught up.
                self.settle().await?;
                self.get_key(org_id, id).await
            }
        }
    }

    async fn rotate_key(
        &self,
        org_id: &str,
        old_id: &str,
        now: DateTime<Utc>,
        end: OldKeyEnd,
        revoked_by: &str,
        new: &NewKey,
        audit: &AuditEvent,
    ) -> StoreResult<RotateOutcome> {
        let mut tx = self.pool.begin().await?;
        let ended = match end {
            OldKeyEnd::RevokeNow => sqlx::query_as::<_, KeyRow>(sql::ROTATE_REVOKE_OLD)
                .bind(ms(now))
                .bind(revoked_by),
            OldKeyEnd::ExpireAt(until) => sqlx::query_as::<_, KeyRow>(sql::ROTATE_EXPIRE_OLD)
                .bind(ms(until))
                .bind(ms(now)),
        }
        .bind(org_id)
        .bind(old_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = ended else {
            tx.rollback().await?;
            return Ok(match self.get_key(org_id, old_id).await? {
                Some(k) => RotateOutcome::NotActive(Box::new(k)),
                None => RotateOutcome::NotFound,
            });
        };
        let created = self.create_key_in(&mut tx, new).await?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        self.settle().await?;
        Ok(RotateOutcome::Rotated {
            old: Box::new(old.try_into()?),
            new: Box::new(created),
        })
    }

    async fn key_by_digest(&self, digest: &[u8; 32]) -> StoreResult<Option<AuthRecord>> {
        sqlx::query_as::<_, AuthRow>(sql::KEY_BY_DIGEST)
            .bind(digest.as_slice())
            .fetch_optional(&self.pool)
            .await?
            .map(AuthRecord::try_from)
            .transpose()
    }

    async fn record_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for (id, at) in uses {
            sqlx::query(sql::RECORD_LAST_USED)
                .bind(ms(*at))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_seed_keys(&self, keys: &[SeedKey], audit: &[AuditEvent]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in keys.chunks(SEED_CHUNK) {
            let mut insert = QueryBuilder::<Postgres>::new(sql::INSERT_SEED_KEYS);
            insert.push_values(chunk, |mut row, s| {
                let k = &s.key;
                row.push_bind(&k.id)
                    .push_bind(&k.org_id)
                    .push_bind(&k.name)
                    .push_bind(&k.description)
                    .push_bind(&k.prefix)
                    .push_bind(k.digest.as_slice())
                    .push_bind(k.scopes.join(" "))
                    .push_bind(ms(k.created_at))
                    .push_bind(&k.created_by)
                    .push_bind(k.expires_at.map(ms))
                    .push_bind(s.last_used_at.map(ms))
                    .push_bind(s.revoked.as_ref().map(|(at, _)| ms(*at)))
                    .push_bind(s.revoked.as_ref().map(|(_, by)| by.as_str()));
            });
            insert.build().execute(&mut *tx).await?;
        }
        for chunk in audit.chunks(SEED_CHUNK) {
            let mut insert = QueryBuilder::<Postgres>::new(sql::INSERT_AUDIT_ROWS);
            insert.push_values(chunk, |mut row, a| {
                row.push_bind(&a.org_id)
                    .push_bind(ms(a.at))
                    .push_bind(&a.actor_kind)
                    .push_bind(&a.actor_id)
                    .push_bind(&a.actor_name)
                    .push_bind(&a.action)
                    .push_bind(&a.api_key_id)
                    .push_bind(&a.remote_addr)
                    .push_bind(a.details.to_string());
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(
        &self,
        org_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        sqlx::query_as::<_, AuditRow>(sql::LIST_AUDIT)
            .bind(org_id)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(AuditRecord::try_from)
            .collect()
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(sql::PING).execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn policy(&self, org_id: &str) -> StoreResult<Policy> {
        let json: Option<String> = sqlx::query_scalar(sql::GET_POLICY)
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        policy_from_json(json)
    }

    async fn set_policy(
        &self,
        org_id: &str,
        policy: &Policy,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        let json = policy_to_json(policy)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::SET_POLICY)
            .bind(org_id)
            .bind(json)
            .bind(ms(audit.at))
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_ssh_key(&self, key: &SshKey, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::INSERT_SSH_KEY)
            .bind(&key.fingerprint)
            .bind(&key.user_id)
            .bind(&key.algorithm)
            .bind(&key.public_key)
            .bind(&key.comment)
            .bind(ms(key.added_at))
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_ssh_keys(&self, user_id: Option<&str>) -> StoreResult<Vec<SshKey>> {
        sqlx::query_as::<_, ssh_keys::SshKeyRow>(sql::LIST_SSH_KEYS)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(SshKey::try_from)
            .collect()
    }

    async fn remove_ssh_key(
        &self,
        user_id: &str,
        fingerprint: &str,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let removed = sqlx::query(sql::REMOVE_SSH_KEY)
            .bind(user_id)
            .bind(fingerprint)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn ssh_key_owner(&self, fingerprint: &str) -> StoreResult<Option<(User, Org)>> {
        sqlx::query_as::<_, UserOrgRow>(sql::SSH_KEY_OWNER)
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?
            .map(UserOrgRow::split)
            .transpose()
    }

    async fn touch_ssh_key(&self, fingerprint: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(sql::TOUCH_SSH_KEY)
            .bind(ms(at))
            .bind(fingerprint)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ssh_key_holder(&self, fingerprint: &str) -> StoreResult<Option<SshKeyHolder>> {
        sqlx::query_as::<_, ssh_keys::SshKeyHolderRow>(sql::SSH_KEY_HOLDER)
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?
            .map(SshKeyHolder::try_from)
            .transpose()
    }

    async fn record_audit(&self, audit: &AuditEvent) -> StoreResult<()> {
        insert_audit(&self.pool, audit).await
    }
}
