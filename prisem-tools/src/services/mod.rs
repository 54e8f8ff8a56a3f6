//! The PRISEM services built into prisem-tools, each a [`Service`] a server
//! can run: [`anon`] (rewrites addresses inside mapped networks) and [`crosscor`] (correlates
//! the addresses of a text with the sites of a network map).

use std::sync::Arc;

use crate::addr::{Loaded, NetMap, Warning};
use crate::rpc::{encode_base64, AppData, Reply, Service, ServiceError};

pub mod anon;
pub mod crosscor;

/// The request's `netmap` file, parsed; a YAML map that does not parse is an error reply.
pub(crate) fn load_netmap(appdata: &AppData) -> Result<Loaded, ServiceError> {
    let bytes = appdata.file("netmap")?;
    NetMap::parse(&bytes).map_err(|e| ServiceError::new(format!("Error: {e}")))
}

/// The warnings about skipped map lines, one `Warning: …` line each, for stderr.
pub(crate) fn warnings_text(warnings: &[Warning]) -> Vec<u8> {
    warnings
        .iter()
        .map(|w| format!("Warning: {w}; line skipped\n"))
        .collect::<String>()
        .into_bytes()
}

/// A service whose work is CPU-bound and synchronous: [`Blocking`] runs it on tokio's blocking
/// pool, so a large request does not hold up the runtime's other tasks (heartbeats, the other
/// workers).
pub trait Process: Send + Sync + 'static {
    /// Handles one request.
    fn process(&self, appdata: AppData) -> Result<Reply, ServiceError>;
}

impl Process for anon::Anon {
    fn process(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        Self::process(self, appdata)
    }
}

impl Process for crosscor::Crosscor {
    fn process(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        self.process_at(appdata, crate::identity::unix_now())
    }
}

/// Runs a [`Process`] service on the blocking pool, with a server-side default network map
/// used when a request brings none.
#[derive(Debug)]
pub struct Blocking<S> {
    inner: Arc<S>,
    default_netmap: Option<Arc<str>>,
}

impl<S: Process> Blocking<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner: Arc::new(inner),
            default_netmap: None,
        }
    }

    /// Uses `netmap` (the map file's contents) for requests whose `netmap` is absent or empty.
    pub fn with_default_netmap(mut self, netmap: &[u8]) -> Self {
        self.default_netmap = Some(encode_base64(netmap).into());
        self
    }
}

impl<S: Process> Service for Blocking<S> {
    async fn handle(&self, mut appdata: AppData) -> Result<Reply, ServiceError> {
        if let Some(map) = &self.default_netmap {
            let empty = matches!(appdata.string("netmap"), Ok(None) | Ok(Some("")));
            if empty {
                appdata = appdata.with("netmap", map.as_ref());
            }
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.process(appdata))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}
