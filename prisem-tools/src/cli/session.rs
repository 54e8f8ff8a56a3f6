//! Opening and closing the one connection and channel a subcommand uses.

use amqp_client::{Channel, Connection, ConnectionConfig, Error as ClientError};

use crate::exit::{Failure, CONNECTION, USAGE};

/// A connection and a channel on it.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) conn: Connection,
    pub(super) channel: Channel,
}

impl Session {
    /// Connects and opens a channel. Every failure here is a connection failure (exit status
    /// 3), except a configuration the client cannot use (1).
    pub(super) async fn open(config: ConnectionConfig) -> Result<Self, Failure> {
        let target = format!("{}:{} vhost {:?}", config.host, config.port, config.vhost);
        let conn = Connection::connect_with(config)
            .await
            .map_err(|e| connect_failure(&e).context(format!("cannot connect to {target}")))?;
        let channel = conn
            .open_channel()
            .await
            .map_err(|e| connect_failure(&e).context("cannot open a channel"))?;
        Ok(Self { conn, channel })
    }

    /// Closes the channel, then the connection. The channel's close is a round trip, so an
    /// error the broker raised for something sent without an answer (a publish to a missing
    /// exchange) has arrived by then and is returned. An error closing the connection changes
    /// nothing for the user.
    pub(super) async fn close(self) -> Result<(), Failure> {
        let channel = self.channel.close().await;
        if let Err(e) = self.conn.close().await {
            tracing::debug!("closing the connection: {e}");
        }
        channel.map_err(Failure::from)
    }
}

fn connect_failure(e: &ClientError) -> Failure {
    let code = match e {
        ClientError::Uri(_) | ClientError::Config(_) => USAGE,
        _ => CONNECTION,
    };
    Failure::new(code, e.to_string())
}

/// Runs `f` on an open session and closes it afterwards, whatever `f` returned.
pub(super) async fn with_session<T>(
    config: ConnectionConfig,
    f: impl AsyncFnOnce(&Session) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let session = Session::open(config).await?;
    let result = f(&session).await;
    let closed = session.close().await;
    let value = result?;
    closed?;
    Ok(value)
}
