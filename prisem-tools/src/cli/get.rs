//! `amqp get`.

use amqp_client::options::GetOptions;
use amqp_client::ConnectionConfig;

use super::output::print;
use super::session::with_session;
use super::GetArgs;
use crate::exit::{Failure, EMPTY_OR_NOT_FOUND, OK};

pub(super) async fn run(config: ConnectionConfig, args: &GetArgs) -> Result<u8, Failure> {
    with_session(config, async |s| {
        let options = GetOptions {
            no_ack: args.no_ack,
        };
        let Some(msg) = s.channel.basic_get(&args.queue, options).await? else {
            return Err(Failure::new(
                EMPTY_OR_NOT_FOUND,
                format!("queue {:?} is empty", args.queue),
            ));
        };
        let d = &msg.delivery;
        let printed = print(d, args.format);
        if !args.no_ack {
            // Only a message that reached standard output is taken off the queue.
            if args.requeue || printed.is_err() {
                d.reject(true)?;
            } else {
                d.ack()?;
            }
        }
        printed.map_err(|e| Failure::usage(format!("cannot write the message: {e}")))?;
        Ok(OK)
    })
    .await
}
