use anyhow::{anyhow, Context};
use diesel::connection::Connection;
use diesel::RunQueryDsl;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The SQL migrations of `migrations/`, embedded in the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../../migrations");

/// Key of the advisory lock that serialises migrations of instances starting together.
const MIGRATION_LOCK: i64 = 0x636f_6d6d_0001;

/// Runs every pending migration and returns the versions it applied. Safe to call from
/// several instances at once: they take turns under an advisory lock.
pub async fn run_migrations(url: &str) -> anyhow::Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .with_context(|| "connecting to the database to migrate it")?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .execute(&mut conn)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| anyhow!("running migrations: {e}"));
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .execute(&mut conn)?;
        applied
    })
    .await
    .context("the migration task panicked")?
}
