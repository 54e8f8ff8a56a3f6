//! Writing messages to standard output in the chosen format.

use std::io::{self, Write};

use amqp_client::Delivery;

use super::Format;
use crate::json::{delivery, DeliveryView};

/// The JSON view of a client delivery.
fn view(d: &Delivery) -> DeliveryView<'_> {
    DeliveryView {
        exchange: d.exchange.as_str(),
        routing_key: d.routing_key.as_str(),
        redelivered: d.redelivered,
        delivery_tag: d.delivery_tag,
        properties: d.properties(),
        body: &d.body,
    }
}

/// Writes one message to standard output and flushes, so each line reaches a pipe at once.
pub(super) fn print(d: &Delivery, format: Format) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", delivery(&view(d)))?,
        Format::Body => {
            out.write_all(&d.body)?;
            out.write_all(b"\n")?;
        }
        Format::Raw => out.write_all(&d.body)?,
    }
    out.flush()
}
