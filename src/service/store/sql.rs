//! The SQL both backends run. PostgreSQL and SQLite (through sqlx) both accept
//! `$N` parameters, `RETURNING` and `ON CONFLICT DO NOTHING`, so one text serves
//! both; `impl_store!` implements [`Store`] for a struct with a `pool` field.

macro_rules! impl_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::service::store::Store for $store {
            async fn create_org(&self, org: &Org) -> StoreResult<()> {
                sqlx::query("INSERT INTO organisations (id, name, plan, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&org.id)
                    .bind(&org.name)
                    .bind(org.plan.as_str())
                    .bind(ms(org.created_at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
                sqlx::query_as::<_, OrgRow>("SELECT id, name, plan, created_at FROM organisations ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(org_from_row)
                    .collect()
            }

            async fn org_by_name(&self, name: &str) -> StoreResult<Option<Org>> {
                sqlx::query_as::<_, OrgRow>("SELECT id, name, plan, created_at FROM organisations WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(org_from_row)
                    .transpose()
            }

            async fn set_plan(&self, org_id: &str, plan: Plan) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE organisations SET plan = $1 WHERE id = $2")
                    .bind(plan.as_str())
                    .bind(org_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_user(&self, user: &NewUser) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO users (id, org_id, email, role, token_digest, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&user.id)
                .bind(&user.org_id)
                .bind(&user.email)
                .bind(user.role.as_str())
                .bind(user.token_digest.as_slice())
                .bind(ms(user.created_at))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn add_user(&self, user: &NewUser, audit: &AuditEvent) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO users (id, org_id, email, role, token_digest, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&user.id)
                .bind(&user.org_id)
                .bind(&user.email)
                .bind(user.role.as_str())
                .bind(user.token_digest.as_slice())
                .bind(ms(user.created_at))
                .execute(&mut *tx)
                .await?;
                insert_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_users(&self, org_id: Option<&str>) -> StoreResult<Vec<User>> {
                sqlx::query_as::<_, UserRow>(
                    "SELECT id, org_id, email, role, created_at, token_digest IS NOT NULL FROM users \
                     WHERE ($1 IS NULL OR org_id = $1) AND removed_at IS NULL ORDER BY email",
                )
                .bind(org_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(user_from_row)
                .collect()
            }

            async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
                sqlx::query_as::<_, UserRow>(
                    "SELECT id, org_id, email, role, created_at, token_digest IS NOT NULL FROM users \
                     WHERE email = $1 AND removed_at IS NULL",
                )
                .bind(email)
                .fetch_optional(&self.pool)
                .await?
                .map(user_from_row)
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
                    UserChange::Remove { at } => sqlx::query(
                        "UPDATE users SET removed_at = $1, token_digest = NULL \
                         WHERE id = $2 AND removed_at IS NULL",
                    )
                    .bind(ms(*at)),
                    UserChange::SetRole(role) => sqlx::query(
                        "UPDATE users SET role = $1 WHERE id = $2 AND removed_at IS NULL",
                    )
                    .bind(role.as_str()),
                    UserChange::SetToken(digest) => sqlx::query(
                        "UPDATE users SET token_digest = $1 WHERE id = $2 AND removed_at IS NULL",
                    )
                    .bind(digest.as_ref().map(|d| d.to_vec())),
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
                let done = sqlx::query(
                    "UPDATE users SET token_digest = $1 WHERE email = $2 AND removed_at IS NULL",
                )
                    .bind(token_digest.as_slice())
                    .bind(email)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn user_by_token(&self, token_digest: &[u8; 32]) -> StoreResult<Option<(User, Org)>> {
                let row = sqlx::query_as::<_, (String, String, String, String, i64, String, String, i64)>(
                    "SELECT u.id, u.org_id, u.email, u.role, u.created_at, o.name, o.plan, o.created_at \
                     FROM users u JOIN organisations o ON o.id = u.org_id \
                     WHERE u.token_digest = $1 AND u.removed_at IS NULL",
                )
                .bind(token_digest.as_slice())
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(None) };
                let org = org_from_row((r.1.clone(), r.5, r.6, r.7))?;
                let user = user_from_row((r.0, r.1, r.2, r.3, r.4, true))?;
                Ok(Some((user, org)))
            }

            async fn create_key(
                &self,
                key: &NewKey,
                idempotency: Option<&Idempotency<'_>>,
                audit: &AuditEvent,
            ) -> StoreResult<CreateOutcome> {
                let mut tx = self.pool.begin().await?;
                if let Some(Idempotency { key: idem, request_digest }) = idempotency {
                    // Idempotency keys are remembered for a day, as at Stripe;
                    // the organisation's older ones are forgotten here.
                    sqlx::query("DELETE FROM idempotency_keys WHERE org_id = $1 AND created_at < $2")
                        .bind(&key.org_id)
                        .bind(ms(key.created_at - IDEMPOTENCY_WINDOW))
                        .execute(&mut *tx)
                        .await?;
                    let claimed = sqlx::query(
                        "INSERT INTO idempotency_keys (org_id, idempotency_key, api_key_id, created_at, \
                         request_digest) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
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
                        let (stored,) = sqlx::query_as::<_, (Option<Vec<u8>>,)>(
                            "SELECT request_digest FROM idempotency_keys \
                             WHERE org_id = $1 AND idempotency_key = $2",
                        )
                        .bind(&key.org_id)
                        .bind(*idem)
                        .fetch_one(&mut *tx)
                        .await?;
                        if stored.is_some_and(|d| d.as_slice() != request_digest.as_slice()) {
                            tx.rollback().await?;
                            return Ok(CreateOutcome::Reused);
                        }
                        let earlier = sqlx::query_as::<_, KeyRow>(concat!(
                            "SELECT ", key_columns!(), " FROM api_keys WHERE id = \
                             (SELECT api_key_id FROM idempotency_keys WHERE org_id = $1 AND idempotency_key = $2)"
                        ))
                        .bind(&key.org_id)
                        .bind(*idem)
                        .fetch_one(&mut *tx)
                        .await?;
                        tx.rollback().await?;
                        return Ok(CreateOutcome::Repeat(key_from_row(earlier)?));
                    }
                }
                let created = self.create_key_in(&mut tx, key).await?;
                insert_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(CreateOutcome::Created(created))
            }

            async fn list_keys(&self, org_id: &str, f: &KeyFilter) -> StoreResult<Vec<KeyRecord>> {
                sqlx::query_as::<_, KeyRow>(concat!(
                    "SELECT ", key_columns!(), " FROM api_keys WHERE org_id = $1 \
                     AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
                     AND (CASE $4 \
                            WHEN 'revoked' THEN revoked_at IS NOT NULL \
                            WHEN 'expired' THEN revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $5 \
                            WHEN 'active' THEN revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $5) \
                            ELSE TRUE END) \
                     AND ($6 IS NULL OR LOWER(name) LIKE $6 ESCAPE '\\' OR LOWER(prefix) LIKE $6 ESCAPE '\\' \
                          OR LOWER(description) LIKE $6 ESCAPE '\\' OR scopes LIKE $6 ESCAPE '\\') \
                     ORDER BY created_at DESC, id DESC LIMIT $7"
                ))
                .bind(org_id)
                .bind(f.after.as_ref().map(|c| c.created_at_ms))
                .bind(f.after.as_ref().map(|c| c.id.as_str()))
                .bind(f.status.map(|s| s.as_str()).unwrap_or("any"))
                .bind(ms(f.now))
                .bind(f.q.as_deref().map(like_pattern))
                .bind(i64::from(f.limit))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(key_from_row)
                .collect()
            }

            async fn get_key(&self, org_id: &str, id: &str) -> StoreResult<Option<KeyRecord>> {
                sqlx::query_as::<_, KeyRow>(concat!(
                    "SELECT ", key_columns!(), " FROM api_keys WHERE org_id = $1 AND id = $2"
                ))
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map(key_from_row)
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
                let row = sqlx::query_as::<_, KeyRow>(concat!(
                    "UPDATE api_keys SET revoked_at = $1, revoked_by = $2 \
                     WHERE org_id = $3 AND id = $4 AND revoked_at IS NULL RETURNING ", key_columns!()
                ))
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
                        Ok(Some(key_from_row(row)?))
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
                    OldKeyEnd::RevokeNow => sqlx::query_as::<_, KeyRow>(concat!(
                        "UPDATE api_keys SET revoked_at = $1, revoked_by = $2 \
                         WHERE org_id = $3 AND id = $4 AND revoked_at IS NULL \
                         AND (expires_at IS NULL OR expires_at > $1) RETURNING ", key_columns!()
                    ))
                    .bind(ms(now))
                    .bind(revoked_by)
                    .bind(org_id)
                    .bind(old_id),
                    OldKeyEnd::ExpireAt(until) => sqlx::query_as::<_, KeyRow>(concat!(
                        "UPDATE api_keys SET expires_at = \
                           CASE WHEN expires_at IS NOT NULL AND expires_at < $1 THEN expires_at ELSE $1 END \
                         WHERE org_id = $3 AND id = $4 AND revoked_at IS NULL \
                         AND (expires_at IS NULL OR expires_at > $2) RETURNING ", key_columns!()
                    ))
                    .bind(ms(until))
                    .bind(ms(now))
                    .bind(org_id)
                    .bind(old_id),
                }
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
                    old: Box::new(key_from_row(old)?),
                    new: Box::new(created),
                })
            }

            async fn key_by_digest(&self, digest: &[u8; 32]) -> StoreResult<Option<AuthRecord>> {
                let row = sqlx::query_as::<_, (String, String, String, String, Option<i64>, Option<i64>, String)>(
                    "SELECT k.id, k.org_id, k.name, k.scopes, k.expires_at, k.revoked_at, o.plan \
                     FROM api_keys k JOIN organisations o ON o.id = k.org_id WHERE k.digest = $1",
                )
                .bind(digest.as_slice())
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(AuthRecord {
                    id: r.0,
                    org_id: r.1,
                    name: r.2,
                    scopes: split_scopes(&r.3),
                    expires_at: from_opt_ms(r.4)?,
                    revoked_at: from_opt_ms(r.5)?,
                    org_plan: r.6.parse().map_err(StoreError::Corrupt)?,
                }))
            }

            async fn record_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                for (id, at) in uses {
                    sqlx::query(
                        "UPDATE api_keys SET last_used_at = $1 \
                         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                    )
                    .bind(ms(*at))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
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
                sqlx::query_as::<_, AuditRow>(
                    "SELECT id, org_id, at, actor_kind, actor_id, actor_name, action, api_key_id, \
                     remote_addr, details FROM audit_log \
                     WHERE org_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                )
                .bind(org_id)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(audit_from_row)
                .collect()
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }

        impl $store {
            async fn create_key_in(
                &self,
                tx: &mut sqlx::Transaction<'_, <Self as HasDb>::Db>,
                key: &NewKey,
            ) -> StoreResult<KeyRecord> {
                let row = sqlx::query_as::<_, KeyRow>(concat!(
                    "INSERT INTO api_keys (id, org_id, name, description, prefix, digest, scopes, \
                     created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     RETURNING ", key_columns!()
                ))
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
                .await?;
                key_from_row(row)
            }
        }

        async fn insert_audit<'e, E>(exec: E, a: &AuditEvent) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = <$store as HasDb>::Db>,
        {
            sqlx::query(
                "INSERT INTO audit_log (org_id, at, actor_kind, actor_id, actor_name, action, \
                 api_key_id, remote_addr, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
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
    };
}

pub(crate) use impl_store;

/// Names the sqlx database type behind a store.
pub(crate) trait HasDb {
    type Db: sqlx::Database;
}
