//! `amqp declare`, `bind`, `unbind`, `delete` and `purge`.

use amqp_client::options::{
    BindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, QueueDeclareOptions,
    QueueDeleteOptions,
};
use amqp_client::ConnectionConfig;
use amqp_wire::FieldTable;
use serde_json::json;

use super::session::with_session;
use super::{
    BindArgs, DeclareExchangeArgs, DeclareQueueArgs, DeleteExchangeArgs, DeleteQueueArgs, PurgeArgs,
};
use crate::exit::{Failure, OK};
use crate::headers::{parse_table, DefaultType};

fn arguments(args: &[String]) -> Result<FieldTable, Failure> {
    parse_table(args, DefaultType::Auto).map_err(|e| Failure::usage(e.to_string()))
}

/// The exchange type by name; unknown names go to the broker as they are.
pub(super) fn exchange_kind(name: &str) -> ExchangeKind {
    match name {
        "direct" => ExchangeKind::Direct,
        "fanout" => ExchangeKind::Fanout,
        "topic" => ExchangeKind::Topic,
        "headers" => ExchangeKind::Headers,
        other => ExchangeKind::Custom(other.to_owned()),
    }
}

pub(super) async fn declare_queue(
    config: ConnectionConfig,
    args: &DeclareQueueArgs,
) -> Result<u8, Failure> {
    let options = QueueDeclareOptions {
        passive: args.passive,
        durable: args.durable,
        exclusive: args.exclusive,
        auto_delete: args.auto_delete,
        arguments: arguments(&args.args)?,
        queue_type: args.queue_type.map(Into::into),
    };
    let name = args.name.get().unwrap_or("");
    with_session(config, async |s| {
        let info = s.channel.queue_declare(name, options).await?;
        if args.json {
            println!(
                "{}",
                json!({"queue": info.name, "message_count": info.message_count,
                       "consumer_count": info.consumer_count})
            );
        } else {
            println!("{}", info.name);
        }
        Ok(OK)
    })
    .await
}

pub(super) async fn declare_exchange(
    config: ConnectionConfig,
    args: &DeclareExchangeArgs,
) -> Result<u8, Failure> {
    let options = ExchangeDeclareOptions {
        passive: args.passive,
        durable: args.durable,
        auto_delete: args.auto_delete,
        internal: args.internal,
        arguments: arguments(&args.args)?,
    };
    with_session(config, async |s| {
        s.channel
            .exchange_declare(&args.name, exchange_kind(&args.kind), options)
            .await?;
        Ok(OK)
    })
    .await
}

/// `bind`/`unbind` of a queue (`exchange_dest` false) or an exchange.
pub(super) async fn bind(
    config: ConnectionConfig,
    args: &BindArgs,
    exchange_dest: bool,
    bind: bool,
) -> Result<u8, Failure> {
    let options = BindOptions {
        arguments: arguments(&args.args)?,
    };
    let (dest, src, key) = (
        args.destination.as_str(),
        args.exchange.as_str(),
        args.routing_key.as_str(),
    );
    with_session(config, async |s| {
        let c = &s.channel;
        match (exchange_dest, bind) {
            (false, true) => c.queue_bind(dest, src, key, options).await?,
            (false, false) => c.queue_unbind(dest, src, key, options).await?,
            (true, true) => c.exchange_bind(dest, src, key, options).await?,
            (true, false) => c.exchange_unbind(dest, src, key, options).await?,
        }
        Ok(OK)
    })
    .await
}

pub(super) async fn delete_queue(
    config: ConnectionConfig,
    args: &DeleteQueueArgs,
) -> Result<u8, Failure> {
    let name = args.name.required()?;
    let options = QueueDeleteOptions {
        if_unused: args.if_unused,
        if_empty: args.if_empty,
    };
    with_session(config, async |s| {
        let count = s.channel.queue_delete(name, options).await?;
        println!("{count}");
        Ok(OK)
    })
    .await
}

pub(super) async fn delete_exchange(
    config: ConnectionConfig,
    args: &DeleteExchangeArgs,
) -> Result<u8, Failure> {
    let options = ExchangeDeleteOptions {
        if_unused: args.if_unused,
    };
    with_session(config, async |s| {
        s.channel.exchange_delete(&args.name, options).await?;
        Ok(OK)
    })
    .await
}

pub(super) async fn purge(config: ConnectionConfig, args: &PurgeArgs) -> Result<u8, Failure> {
    let name = args.name.required()?;
    with_session(config, async |s| {
        let count = s.channel.queue_purge(name).await?;
        println!("{count}");
        Ok(OK)
    })
    .await
}
