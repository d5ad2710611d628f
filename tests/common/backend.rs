//! Database backends the suite runs against, and the creation of a fresh database per server:
//! SQLite gets a new file in the server's temp dir, MySQL/MariaDB a new database created with
//! the `mariadb` CLI (URL from `WEFT_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306`),
//! PostgreSQL a new database created with `psql` (URL from `WEFT_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432`). A database server being unreachable is a test failure
//! with a clear message, never a silent skip.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
    Postgres,
}

/// Connection parameters parsed from a `mysql://user[:pass]@host[:port][/...]` URL.
#[derive(Debug, Clone)]
pub struct MysqlTarget {
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
}

impl MysqlTarget {
    pub fn from_env() -> MysqlTarget {
        let url = std::env::var("WEFT_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_string());
        Self::parse(&url)
            .unwrap_or_else(|| panic!("WEFT_TEST_MYSQL_URL {url:?} is not mysql://user[:pass]@host[:port]"))
    }

    fn parse(url: &str) -> Option<MysqlTarget> {
        let rest = url.strip_prefix("mysql://")?;
        let rest = rest.split('/').next()?;
        let (userinfo, hostport) = rest.rsplit_once('@').unwrap_or(("root", rest));
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u.to_string(), Some(p.to_string())),
            None => (userinfo.to_string(), None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (hostport.to_string(), 3306),
        };
        Some(MysqlTarget { user, password, host, port })
    }

    /// The server URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        let auth = match &self.password {
            Some(p) => format!("{}:{}", self.user, p),
            None => self.user.clone(),
        };
        format!("mysql://{auth}@{}:{}/{db}", self.host, self.port)
    }

    /// The `mariadb` CLI arguments that connect to this server.
    pub fn cli_args(&self) -> Vec<String> {
        let mut args =
            vec![format!("-h{}", self.host), format!("-P{}", self.port), format!("-u{}", self.user)];
        if let Some(p) = &self.password {
            args.push(format!("-p{p}"));
        }
        args
    }

    /// Runs one SQL statement with the CLI; panics with the CLI's message on failure.
    pub fn execute(&self, sql: &str) {
        let out = Command::new("mariadb")
            .args(self.cli_args())
            .arg("-e")
            .arg(sql)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the `mariadb` CLI (is it installed?): {e}"));
        assert!(
            out.status.success(),
            "MySQL/MariaDB at {}:{} is not usable for the test suite ({sql}): {}\n\
             Start MariaDB or set WEFT_TEST_MYSQL_URL.",
            self.host,
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A PostgreSQL server: the `postgres://user[:pass]@host[:port]` URL without a database.
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    pub server_url: String,
}

impl PostgresTarget {
    pub fn from_env() -> PostgresTarget {
        let url = std::env::var("WEFT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string());
        assert!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "WEFT_TEST_POSTGRES_URL {url:?} is not postgres://user[:pass]@host[:port]"
        );
        PostgresTarget { server_url: url.trim_end_matches('/').to_string() }
    }

    /// The server URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.server_url)
    }

    /// Runs SQL statements with `psql` on the maintenance database `postgres`; panics with the
    /// CLI's message on failure.
    pub fn execute(&self, sql: &str) {
        let out = Command::new("psql")
            .args(self.psql_args("postgres"))
            .arg("-c")
            .arg(sql)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the `psql` CLI (is it installed?): {e}"));
        assert!(
            out.status.success(),
            "PostgreSQL at {} is not usable for the test suite ({sql}): {}\n\
             Start PostgreSQL or set WEFT_TEST_POSTGRES_URL.",
            self.server_url,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `psql` arguments connecting to database `db`, quiet and failing on the first error.
    pub fn psql_args(&self, db: &str) -> Vec<String> {
        vec!["-X".into(), "-q".into(), "-v".into(), "ON_ERROR_STOP=1".into(), "-d".into(), self.url(db)]
    }
}

static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database prepared for one server: its URL and, for MySQL and PostgreSQL, what to drop
/// afterwards.
pub struct Database {
    pub url: String,
    pub mysql: Option<(MysqlTarget, String)>,
    pub postgres: Option<(PostgresTarget, String)>,
}

/// A database name unique to this test process and call.
fn fresh_name() -> String {
    format!("weft_test_{}_{}", std::process::id(), DB_COUNTER.fetch_add(1, Ordering::SeqCst))
}

impl Database {
    /// A brand-new, empty database for one server.
    pub fn create(backend: Backend, dir: &Path) -> Database {
        match backend {
            Backend::Sqlite => Database {
                url: format!("sqlite:{}", dir.join("weft.db").display()),
                mysql: None,
                postgres: None,
            },
            Backend::Mysql => {
                let target = MysqlTarget::from_env();
                let name = fresh_name();
                target.execute(&format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"));
                Database { url: target.url(&name), mysql: Some((target, name)), postgres: None }
            }
            Backend::Postgres => Database::create_postgres(),
        }
    }

    /// A brand-new PostgreSQL database (UTF-8, whatever the server's template says).
    pub fn create_postgres() -> Database {
        let target = PostgresTarget::from_env();
        let name = fresh_name();
        target.execute(&format!("DROP DATABASE IF EXISTS {name}"));
        target.execute(&format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"));
        Database { url: target.url(&name), mysql: None, postgres: Some((target, name)) }
    }

    /// Shell command (for the watchdog) that drops this database, if it is a MySQL or
    /// PostgreSQL one.
    pub fn drop_command(&self) -> Option<String> {
        if let Some((target, name)) = &self.postgres {
            // WITH (FORCE): a server killed a moment ago may still hold connections.
            let args: Vec<String> = target
                .psql_args("postgres")
                .iter()
                .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
                .collect();
            return Some(format!(
                "psql {} -c 'DROP DATABASE IF EXISTS {name} WITH (FORCE)' >/dev/null 2>&1",
                args.join(" ")
            ));
        }
        let (target, name) = self.mysql.as_ref()?;
        let args: Vec<String> =
            target.cli_args().iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
        Some(format!("mariadb {} -e 'DROP DATABASE IF EXISTS {name}' >/dev/null 2>&1", args.join(" ")))
    }
}
