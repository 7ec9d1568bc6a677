//! SQLite backend: the embedded default, one file in the data dir.
//!
//! WAL with `synchronous = FULL`: a transaction that returned is on disk, so a
//! key reported created survives `kill -9` and power loss.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};

use super::sql;
use super::*;

/// `migrations/sqlite/*.sql`, embedded at build time.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and migrates it.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // Created private before SQLite opens it: SQLite gives `-wal` and
        // `-shm` the database file's mode, so they are private too. Files an
        // older build (or a copy, a restore) left readable by others are made
        // private first, or refused with the command that fixes them.
        let file = options.get_filename();
        let name = file.to_string_lossy();
        if !name.is_empty() && !name.starts_with(':') && !name.starts_with("file:") {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.as_os_str().to_owned();
                path.push(suffix);
                crate::fs::make_private(std::path::Path::new(&path), "database file")
                    .map_err(|e| sqlx::Error::Configuration(e.into()))?;
            }
            crate::service::create_private_file(file).map_err(sqlx::Error::Io)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn create_key_in(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
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
    E: sqlx::Executor<'e, Database = Sqlite>,
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
    E: sqlx::Executor<'e, Database = Sqlite>,
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
impl Store for SqliteStore {
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
            .bind(f.changed_since)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(KeyRecord::try_from)
            .collect()
    }

    async fn change_cursor(&self, org_id: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(sql::SQLITE_CHANGE_CURSOR)
            .bind(org_id)
            .fetch_one(&self.pool)
            .await?)
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
                Ok(Some(row.try_into()?))
            }
            None => {
                tx.rollback().await?;
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
        let mut change_seq: i64 = sqlx::query_scalar(sql::SQLITE_HIGHEST_CHANGE_SEQ)
            .fetch_one(&mut *tx)
            .await?;
        for chunk in keys.chunks(SEED_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new(sql::SQLITE_INSERT_SEED_KEYS);
            insert.push_values(chunk, |mut row, s| {
                change_seq += 1;
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
                    .push_bind(s.revoked.as_ref().map(|(_, by)| by.as_str()))
                    .push_bind(change_seq);
            });
            insert.build().execute(&mut *tx).await?;
        }
        for chunk in audit.chunks(SEED_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new(sql::INSERT_AUDIT_ROWS);
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
