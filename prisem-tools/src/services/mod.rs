//! The PRISEM services built into prisem-tools, each a [`Service`](crate::rpc::Service) a server
//! can run: [`anon`] (rewrites addresses inside mapped networks) and [`crosscor`] (correlates
//! the addresses of a text with the sites of a network map).

use crate::addr::{Loaded, NetMap, Warning};
use crate::rpc::{AppData, ServiceError};

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
