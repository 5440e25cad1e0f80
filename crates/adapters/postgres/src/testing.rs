//! Test support: a fresh, migrated database per test, cloned from a template.
//!
//! The template (`commerce_tpl_<hash of migrations>`) is built once under an advisory
//! lock, so test processes running in parallel share it; each test then gets
//! `CREATE DATABASE ... TEMPLATE`, which takes a few milliseconds. The server comes
//! from `DATABASE_URL` (any database on it; `make test` sets it). Names carry
//! `COMMERCE_DB_TAG` (`make test` sets it from the checkout's path, default `dev`), so
//! checkouts sharing a server never drop each other's databases.

use crate::migrate::run_migrations;
use crate::pool::{build_pool, PgPool, PoolSettings};
use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

const TEMPLATE_LOCK: i64 = 0x636f_6d6d_0002;
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test and is dropped with it.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

/// Replaces the database name of a PostgreSQL URL.
pub fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(scheme_end);
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{head}{authority}/{db}{query}")
}

fn tag() -> String {
    std::env::var("COMMERCE_DB_TAG")
        .ok()
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "dev".to_string())
}

fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

fn migrations_fingerprint() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../migrations");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)
            .expect("reading migrations/")
            .flatten()
        {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut h = DefaultHasher::new();
    for f in files {
        f.file_name().hash(&mut h);
        std::fs::read(&f).expect("reading a migration").hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

#[derive(QueryableByName)]
#[allow(dead_code)] // only counted
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl TestDatabase {
    /// Creates a fresh database with every migration applied.
    pub async fn create() -> TestDatabase {
        let admin_url = server_url();
        let template = format!("commerce_tpl_{}_{}", tag(), migrations_fingerprint());
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot connect to {admin_url} (run tests with `make test`): {e}")
            });
        exec(
            &mut admin,
            &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"),
        )
        .await;
        let ready: Vec<Name> = diesel::sql_query(
            "SELECT datname::text AS datname FROM pg_database WHERE datname = $1 AND datistemplate",
        )
        .bind::<Text, _>(&template)
        .load(&mut admin)
        .await
        .expect("looking up the template");
        if ready.is_empty() {
            // Templates of other migration sets are left alone: other checkouts on this
            // server may be using them (`make clean-db` or a fresh server clears them).
            exec(
                &mut admin,
                &format!("DROP DATABASE IF EXISTS \"{template}\""),
            )
            .await;
            exec(&mut admin, &format!("CREATE DATABASE \"{template}\"")).await;
            run_migrations(&with_database(&admin_url, &template))
                .await
                .expect("migrating the template database");
            exec(
                &mut admin,
                &format!("ALTER DATABASE \"{template}\" IS_TEMPLATE true"),
            )
            .await;
        }
        exec(
            &mut admin,
            &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"),
        )
        .await;
        let name = format!("commerce_test_{}_{}", tag(), uuid::Uuid::new_v4().simple());
        exec(
            &mut admin,
            &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
        )
        .await;
        TestDatabase {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }

    /// The URL of the server's maintenance database (for statements that must not run
    /// inside the test database itself).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// This database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool on this database.
    pub fn pool(&self, size: usize) -> PgPool {
        build_pool(&PoolSettings::new(self.url.clone(), size)).expect("building a test pool")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop may run inside a runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut admin = AsyncPgConnection::establish(&admin_url).await.ok()?;
                diesel::sql_query(sql).execute(&mut admin).await.ok()
            })
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
