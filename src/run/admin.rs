//! `keydeck admin`: opens the database (bootstrapping it if new) and hands it
//! to the command (`cli::admin`, which prints what `accounts` did).

use std::path::PathBuf;

use crate::cli::AdminArgs;
use crate::clock::SystemClock;
use crate::service;
use crate::store;
use crate::AnyError;

/// Runs one `keydeck admin` command against the data dir's (or the given) database.
pub async fn admin(args: AdminArgs, data_dir: PathBuf) -> Result<(), AnyError> {
    super::init_logging("warn");
    crate::fs::prepare_data_dir(&data_dir)?;
    let store = store::open(&args.storage.database_url(&data_dir)).await?;
    service::bootstrap(store.as_ref(), &data_dir, &SystemClock).await?;
    let result = crate::cli::admin::run(args.command, store.as_ref(), &SystemClock).await;
    store.close().await;
    result.map_err(Into::into)
}
