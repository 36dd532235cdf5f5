//! The database (docs/history.md): SQLite by default (`sqlite://<DATA_DIR>/history.db`, bundled,
//! WAL, a busy timeout), PostgreSQL when `DATABASE_URL` says `postgres://`. It holds the change
//! history, the last snapshot and the request ledger, so a merchant backs up one file.
//!
//! One query layer serves both backends (sqlx's `Any` driver): times are epoch milliseconds in
//! `BIGINT`, values `TEXT`, placeholders `$1, $2, …` (both backends read them). The tables are
//! created by the migrations in `migrations/<backend>/`, run at start.

use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Arguments, Encode, Type};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open, migrated database. Cheap to clone (a pool).
#[derive(Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .finish()
    }
}

/// The default database: a SQLite file in the data directory.
pub fn default_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("history.db").display())
}

/// `url` without its password, for messages and logs: the password of the user part, however
/// it is written (with `/`, `?`, `#` or `@` in it, encoded or not), and the value of any
/// `password` or `sslpassword` parameter of the query.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The user part ends at the last `@` that is followed by a host: a password may hold `/`,
    // `?` and even `@`, a host none of them. When in doubt, more is hidden, never less.
    let at = rest
        .char_indices()
        .rev()
        .filter(|(_, c)| *c == '@')
        .find(|(i, _)| {
            let host = &rest[i + 1..];
            let end = host.find(['/', '?', '#']).unwrap_or(host.len());
            !host[..end].is_empty()
                && host[..end]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_:[]%".contains(c))
        });
    let (userinfo, after) = match at {
        Some((i, _)) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push_str(":***");
            }
            None => out.push_str(userinfo),
        }
        out.push('@');
    }
    match after.split_once('?') {
        Some((base, query)) => {
            out.push_str(base);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _))
                        if ["password", "sslpassword"]
                            .contains(&k.to_ascii_lowercase().as_str()) =>
                    {
                        format!("{k}=***")
                    }
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(after),
    }
    out
}

/// The database file, readable by its owner only (it holds the merchant's device list): created
/// so if missing, tightened if not. SQLite gives its `-wal` and `-shm` files the same mode.
fn owner_only(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(file)?;
        let mode = f.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

fn migrations(backend: Backend) -> Migrator {
    let files: &[(i64, &str, &'static str)] = match backend {
        Backend::Sqlite => &[
            (
                1,
                "history",
                include_str!("../../migrations/sqlite/0001_history.sql"),
            ),
            (
                2,
                "event search",
                include_str!("../../migrations/sqlite/0002_event_search.sql"),
            ),
        ],
        Backend::Postgres => &[
            (
                1,
                "history",
                include_str!("../../migrations/postgres/0001_history.sql"),
            ),
            (
                2,
                "event search",
                include_str!("../../migrations/postgres/0002_event_search.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

impl Database {
    /// Opens (creating a SQLite file if needed) and migrates. The error is one line naming
    /// `DATABASE_URL`, without its password.
    pub async fn open(url: &str) -> Result<Database, String> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            format!(
                "DATABASE_URL={}: cannot {what} the database ({e}); set DATABASE_URL to a \
                 sqlite:// file or a postgres:// server that can be reached",
                redact(url)
            )
        };
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or_default();
            if !file.is_empty() && file != ":memory:" {
                if let Some(dir) = Path::new(file)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|e| fail("create", &e))?;
                }
                owner_only(Path::new(file)).map_err(|e| fail("create", &e))?;
            }
            let url = if path.contains("mode=") {
                url.to_string()
            } else if path.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(format!(
                "DATABASE_URL={}: not a database URL this dashboard knows; use sqlite://<file> \
                 or postgres://user@host/db",
                redact(url)
            ));
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10));
        let options = if backend == Backend::Sqlite {
            options.after_connect(|conn, _| {
                Box::pin(async move {
                    // Safe with WAL: a crash loses at most the last commits, never consistency.
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.connect(&url).await.map_err(|e| fail("open", &e))?;
        if backend == Backend::Sqlite {
            // Readers never wait for the writer. A property of the file: set once, kept.
            sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_optional(&pool)
                .await
                .map_err(|e| fail("open", &e))?;
        }
        migrations(backend)
            .run(&pool)
            .await
            .map_err(|e| fail("migrate", &e))?;
        Ok(Database { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A value of the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        Sql::new("SELECT value FROM meta WHERE key = ")
            .bind(key.to_string())
            .query_scalar::<String>()
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        Sql::new("INSERT INTO meta (key, value) VALUES (")
            .bind(key.to_string())
            .push(", ")
            .bind(value.to_string())
            .push(") ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .query()
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Closes the pool (at shutdown: SQLite checkpoints its log).
    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// SQL with `$n` placeholders, built as values are bound (both backends read `$n`).
pub struct Sql {
    text: String,
    args: AnyArguments,
    n: usize,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: AnyArguments::default(),
            n: 0,
        }
    }

    pub fn push(mut self, text: &str) -> Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind<T>(mut self, value: T) -> Sql
    where
        T: for<'q> Encode<'q, Any> + Type<Any>,
    {
        self.n += 1;
        let _ = write!(self.text, "${}", self.n);
        // Encoding into the Any buffer does not fail for the types used here.
        self.args
            .add(value)
            .expect("a value the Any driver encodes");
        self
    }

    /// `(v1, v2, …)` for a non-empty list.
    pub fn bind_list<T>(mut self, values: impl IntoIterator<Item = T>) -> Sql
    where
        T: for<'q> Encode<'q, Any> + Type<Any>,
    {
        self = self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self = self.push(", ");
            }
            self = self.bind(v);
        }
        self.push(")")
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn query(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args)
    }

    pub fn query_scalar<O>(self) -> sqlx::query::QueryScalar<'static, Any, O, AnyArguments>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_scalar_with(sqlx::AssertSqlSafe(self.text), self.args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/history?sslmode=require"),
            "postgres://app:***@db.example:5432/history?sslmode=require"
        );
        assert_eq!(
            redact("postgres://app@db/history"),
            "postgres://app@db/history"
        );
        assert_eq!(
            redact("sqlite://./data/history.db"),
            "sqlite://./data/history.db"
        );
        assert_eq!(redact("postgres://a:b:c@h/d"), "postgres://a:***@h/d");
        assert!(!redact("postgres://u:p%40ss@h/d").contains("p%40ss"));
        // Every form a password can take in a URL (these leaked before).
        for (url, shown) in [
            ("postgres://u:pa/ss@h:5432/d", "postgres://u:***@h:5432/d"),
            ("postgres://u:pa?ss@h/d", "postgres://u:***@h/d"),
            ("postgres://u:pa#ss@h/d", "postgres://u:***@h/d"),
            ("postgres://u:pa@ss@h/d", "postgres://u:***@h/d"),
            ("postgres://u:p/a?s@s@h/d?x=1", "postgres://u:***@h/d?x=1"),
            (
                "postgresql://u:s3cret@[::1]:5432/d",
                "postgresql://u:***@[::1]:5432/d",
            ),
            (
                "postgres://u@h/d?password=s3cret",
                "postgres://u@h/d?password=***",
            ),
            (
                "postgres://h/d?sslmode=require&PASSWORD=s3cret&application_name=x",
                "postgres://h/d?sslmode=require&PASSWORD=***&application_name=x",
            ),
            (
                "postgres://h/d?sslpassword=s3cret",
                "postgres://h/d?sslpassword=***",
            ),
            (
                "redis://:pa/ss@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let sql = Sql::new("SELECT 1 WHERE a = ")
            .bind(1i64)
            .push(" AND b IN ")
            .bind_list(["x".to_string(), "y".to_string()]);
        assert_eq!(sql.text(), "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
    }
}
