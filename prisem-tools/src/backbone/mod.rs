//! The Communications Backbone: an HTTP API through which clients that do not speak AMQP send
//! and receive messages, and a bus on RabbitMQ that routes them by topic subscription or
//! broadcast.
//!
//! - [`store`]: the client register (SQLite, argon2-hashed secrets, versioned schema).
//! - [`token`]: HMAC-SHA256 bearer tokens.
//! - [`bus`]: the per-client queues, the `soar-publish` topic exchange and the broadcast
//!   fanout, and the forwarders (publisher confirms, source acked after the confirm).
//! - [`api`]: the axum router.
//! - [`stream`]: the `/stream` websocket.
//!
//! [`Backbone::start`] ties them together; [`Backbone::serve`] answers HTTP on a listener until
//! a [`Shutdown`].

pub mod api;
pub mod bus;
pub mod store;
pub mod stream;
pub mod token;

use std::time::Duration;

use amqp_client::Connection;

use crate::daemon::Shutdown;
use api::{ApiConfig, AppState};
use bus::Bus;
use store::{Store, StoreError};
use token::Signer;

/// How often the bus re-reads the register (to pick up clients added by `backbone client`).
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// How the backbone is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Token lifetime (`SOAR_TOKEN_LIFETIME` hours).
    pub token_lifetime: Duration,
    /// The token signing key (`SOAR_TOKEN_SECRET`); generated and stored when `None`.
    pub token_secret: Option<String>,
    /// The admin token (`BACKBONE_ADMIN_TOKEN`); generated, stored hashed and reported once
    /// when `None`.
    pub admin_token: Option<String>,
}

/// A started backbone: the register, the bus and the API state.
#[derive(Debug, Clone)]
pub struct Backbone {
    store: Store,
    bus: Bus,
    state: AppState,
    /// The admin token generated on this first run, if one was (to be shown once).
    pub new_admin_token: Option<String>,
}

/// Why the backbone could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The register failed.
    Store(StoreError),
    /// The broker failed.
    Broker(amqp_client::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(e) => write!(f, "{e}"),
            Self::Broker(e) => write!(f, "broker: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl Backbone {
    /// Loads or creates the keys in `store`, declares the topology on `conn` and starts a
    /// forwarder per registered client.
    pub async fn start(
        store: Store,
        conn: Connection,
        settings: Settings,
    ) -> Result<Self, StartError> {
        let key = match settings.token_secret {
            Some(k) => k,
            None => {
                store
                    .setting_or_insert("token_secret", || store::random_token(32))
                    .map_err(StartError::Store)?
                    .0
            }
        };
        let mut new_admin_token = None;
        let admin_hash = match settings.admin_token {
            Some(t) => store.hash_secret(&t).map_err(StartError::Store)?,
            None => {
                let (hash, created) = store
                    .setting_or_insert("admin_token_hash", || {
                        let t = store::random_token(32)?;
                        let h = store.hash_secret(&t)?;
                        new_admin_token = Some(t);
                        Ok(h)
                    })
                    .map_err(StartError::Store)?;
                if !created {
                    new_admin_token = None;
                }
                hash
            }
        };
        let bus = Bus::start(conn).await.map_err(StartError::Broker)?;
        bus.reconcile(&store.list().map_err(StartError::Store)?)
            .await
            .map_err(StartError::Broker)?;
        let state = AppState::new(
            store.clone(),
            Signer::new(key.as_bytes()),
            bus.clone(),
            ApiConfig {
                token_lifetime: settings.token_lifetime,
                admin_token_hash: admin_hash,
            },
        );
        Ok(Self {
            store,
            bus,
            state,
            new_admin_token,
        })
    }

    /// The API's router (for serving, or driving in tests).
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Serves the API on `listener` until `shutdown`, re-reading the register every
    /// [`RECONCILE_EVERY`]; then stops the forwarders.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: Shutdown,
    ) -> std::io::Result<()> {
        let sync = {
            let store = self.store.clone();
            let bus = self.bus.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.requested() => return,
                        _ = tokio::time::sleep(RECONCILE_EVERY) => {}
                    }
                    match store.list() {
                        Ok(clients) => {
                            if let Err(e) = bus.reconcile(&clients).await {
                                tracing::warn!("bus: {e}");
                            }
                        }
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
            })
        };
        let stop = shutdown.clone();
        let state = self.state.clone();
        let r = axum::serve(listener, self.router())
            .with_graceful_shutdown(async move {
                stop.requested().await;
                state.close_streams();
            })
            .await;
        shutdown.trigger();
        let _ = sync.await;
        self.bus.stop().await;
        r
    }
}
