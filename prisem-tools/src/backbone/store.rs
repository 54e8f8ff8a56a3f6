//! The client register: an embedded SQLite database holding each client's id, name and
//! subscription with an argon2 hash of its secret, plus the service's own settings (the token
//! signing key, the admin token's hash). The schema is versioned with `PRAGMA user_version`.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The schema, one step per version; step `i` takes the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["CREATE TABLE clients (
        client_id    TEXT PRIMARY KEY NOT NULL,
        client_name  TEXT NOT NULL,
        subscription TEXT NOT NULL,
        secret_hash  TEXT NOT NULL,
        created      TEXT NOT NULL,
        updated      TEXT NOT NULL
    );
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    );"];

/// A client as the API shows it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientRecord {
    /// The client's id, also the prefix of its queue names.
    pub client_id: String,
    /// A human-readable name.
    pub client_name: String,
    /// The topic pattern its inbox is bound with (`*` one word, `#` zero or more).
    pub subscription: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When it was last changed (RFC 3339).
    pub updated: String,
}

/// What went wrong in the register.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A client with this id already exists.
    Duplicate,
    /// No client with this id.
    NotFound,
    /// The database failed.
    Database(rusqlite::Error),
    /// Hashing a secret failed.
    Hash(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Duplicate => f.write_str("a client with this id already exists"),
            Self::NotFound => f.write_str("no such client"),
            Self::Database(e) => write!(f, "client database: {e}"),
            Self::Hash(e) => write!(f, "hashing a secret: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e)
    }
}

/// The register. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Store {
    db: Arc<Mutex<Connection>>,
    params: Params,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `n` random bytes from the operating system, as URL-safe base64.
pub(crate) fn random_token(n: usize) -> Result<String, StoreError> {
    use base64::Engine as _;
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Hash(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

impl Store {
    /// Opens (creating it if needed) the database at `path` and brings its schema up to date.
    /// The file is made readable by its owner only: it holds the token signing key.
    pub fn open(path: &Path, params: Params) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Self::with_connection(conn, params)
    }

    /// A database in memory (for tests and trials).
    pub fn in_memory(params: Params) -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?, params)
    }

    fn with_connection(mut conn: Connection, params: Params) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(Self {
            db: Arc::new(Mutex::new(conn)),
            params,
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hasher(&self) -> Argon2<'static> {
        Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            self.params.clone(),
        )
    }

    /// An argon2 hash of `secret` (PHC string).
    pub fn hash_secret(&self, secret: &str) -> Result<String, StoreError> {
        let mut salt_bytes = [0u8; 16];
        getrandom::fill(&mut salt_bytes)
            .map_err(|e| StoreError::Hash(format!("no randomness: {e}")))?;
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|e| StoreError::Hash(e.to_string()))?;
        self.hasher()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| StoreError::Hash(e.to_string()))
    }

    /// Whether `secret` matches `hash` (argon2 compares in constant time).
    pub fn verify_secret(&self, secret: &str, hash: &str) -> bool {
        PasswordHash::new(hash)
            .map(|h| self.hasher().verify_password(secret.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    }

    /// Adds a client with a fresh secret; returns the record and the secret (its only showing).
    pub fn create(
        &self,
        client_id: &str,
        client_name: &str,
        subscription: &str,
    ) -> Result<(ClientRecord, String), StoreError> {
        let secret = random_token(32)?;
        let hash = self.hash_secret(&secret)?;
        let t = now();
        let r = self.db().execute(
            "INSERT INTO clients (client_id, client_name, subscription, secret_hash, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![client_id, client_name, subscription, hash, t],
        );
        match r {
            Ok(_) => Ok((
                ClientRecord {
                    client_id: client_id.to_owned(),
                    client_name: client_name.to_owned(),
                    subscription: subscription.to_owned(),
                    created: t.clone(),
                    updated: t,
                },
                secret,
            )),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Duplicate)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every client, ordered by id.
    pub fn list(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT client_id, client_name, subscription, created, updated FROM clients
             ORDER BY client_id",
        )?;
        let rows = stmt.query_map([], row_to_record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One client.
    pub fn get(&self, client_id: &str) -> Result<ClientRecord, StoreError> {
        self.db()
            .query_row(
                "SELECT client_id, client_name, subscription, created, updated FROM clients
                 WHERE client_id = ?1",
                [client_id],
                row_to_record,
            )
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    /// The hash of a client's secret.
    pub fn secret_hash(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT secret_hash FROM clients WHERE client_id = ?1",
                [client_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Changes a client's name and/or subscription.
    pub fn update(
        &self,
        client_id: &str,
        client_name: Option<&str>,
        subscription: Option<&str>,
    ) -> Result<ClientRecord, StoreError> {
        let n = self.db().execute(
            "UPDATE clients SET client_name = COALESCE(?2, client_name),
                 subscription = COALESCE(?3, subscription), updated = ?4
             WHERE client_id = ?1",
            params![client_id, client_name, subscription, now()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        self.get(client_id)
    }

    /// Removes a client.
    pub fn delete(&self, client_id: &str) -> Result<(), StoreError> {
        let n = self
            .db()
            .execute("DELETE FROM clients WHERE client_id = ?1", [client_id])?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A setting, or `make()`'s value stored under `key` if there was none.
    pub fn setting_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<String, StoreError>,
    ) -> Result<(String, bool), StoreError> {
        let db = self.db();
        let existing: Option<String> = db
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(v) = existing {
            return Ok((v, false));
        }
        let v = make()?;
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)",
            params![key, v],
        )?;
        Ok((v, true))
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClientRecord> {
    Ok(ClientRecord {
        client_id: r.get(0)?,
        client_name: r.get(1)?,
        subscription: r.get(2)?,
        created: r.get(3)?,
        updated: r.get(4)?,
    })
}

/// Cheap argon2 parameters for tests (production uses `Params::default()`).
#[cfg(test)]
pub(crate) fn test_params() -> Params {
    Params::new(256, 1, 1, None).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_update_delete() {
        let s = Store::in_memory(test_params()).unwrap();
        let (rec, secret) = s.create("alpha", "Alpha site", "soar.#").unwrap();
        assert_eq!(rec.subscription, "soar.#");
        assert!(secret.len() >= 40);
        assert!(matches!(
            s.create("alpha", "again", "#"),
            Err(StoreError::Duplicate)
        ));
        let hash = s.secret_hash("alpha").unwrap().unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(s.verify_secret(&secret, &hash));
        assert!(!s.verify_secret("wrong", &hash));
        let up = s.update("alpha", None, Some("soar.*.noc.#")).unwrap();
        assert_eq!(up.client_name, "Alpha site");
        assert_eq!(up.subscription, "soar.*.noc.#");
        assert_eq!(s.list().unwrap().len(), 1);
        s.delete("alpha").unwrap();
        assert!(matches!(s.get("alpha"), Err(StoreError::NotFound)));
        assert!(matches!(s.delete("alpha"), Err(StoreError::NotFound)));
    }

    #[test]
    fn migrations_run_once_and_settings_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backbone.db");
        let s = Store::open(&path, test_params()).unwrap();
        let (k1, new1) = s.setting_or_insert("k", || Ok("v1".into())).unwrap();
        assert!(new1);
        drop(s);
        let s = Store::open(&path, test_params()).unwrap();
        let (k2, new2) = s.setting_or_insert("k", || Ok("v2".into())).unwrap();
        assert_eq!((k1, new2), (k2, false));
    }
}
