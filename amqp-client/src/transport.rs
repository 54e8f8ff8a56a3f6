//! Setting up the byte stream a connection runs over.
//!
//! [`crate::Connection::open_with`] takes any `AsyncRead + AsyncWrite` transport; this module
//! makes the standard ones: TCP (with the connect timeout and `TCP_NODELAY`) and, for
//! `amqps://`, TLS on top of it.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::uri::TlsOptions;

/// Connects over TCP to the first address of `host` that answers within `timeout`.
pub(crate) async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let connect = async {
        let stream = TcpStream::connect((host, port)).await.map_err(|e| {
            Error::io(std::io::Error::new(
                e.kind(),
                format!("cannot connect to {host}:{port}: {e}"),
            ))
        })?;
        // Frames are coalesced by the driver already; Nagle would only add latency.
        stream.set_nodelay(true)?;
        Ok(stream)
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(r) => r,
        Err(_) => Err(Error::ConnectTimeout(timeout)),
    }
}

/// A TLS session over `tcp` for `amqps://` to `host:port` (see [`crate::tls`]).
pub(crate) async fn wrap_tls(
    tcp: TcpStream,
    host: &str,
    port: u16,
    tls: &TlsOptions,
) -> Result<crate::tls::TlsTransport<TcpStream>> {
    crate::tls::handshake(tcp, host, port, tls).await
}

/// Any byte stream a connection can run over, boxed so that recovery can replace it.
pub(crate) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// A boxed transport.
pub(crate) type BoxIo = Box<dyn Io>;

/// TCP (and TLS when `cfg.tls` is set) to `endpoint`, within `timeout`.
pub(crate) async fn connect(
    cfg: &crate::ConnectionConfig,
    endpoint: &crate::config::Endpoint,
    timeout: Duration,
) -> Result<BoxIo> {
    let started = std::time::Instant::now();
    let tcp = connect_tcp(&endpoint.host, endpoint.port, timeout).await?;
    match &cfg.tls {
        None => Ok(Box::new(crate::tls::FirstByteCheck::plain(
            tcp,
            &endpoint.host,
            endpoint.port,
        ))),
        Some(tls) => {
            let left = timeout.saturating_sub(started.elapsed());
            let handshake = wrap_tls(tcp, &endpoint.host, endpoint.port, tls);
            let stream = tokio::time::timeout(left, handshake)
                .await
                .map_err(|_| Error::ConnectTimeout(timeout))??;
            Ok(Box::new(stream))
        }
    }
}
