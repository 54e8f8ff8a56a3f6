//! The opening handshake: protocol header → `connection.start` / `start-ok` (SASL) →
//! `connection.tune` / `tune-ok` → `connection.open` / `open-ok`.

use std::time::Duration;

use amqp_wire::{connection, Method, ReplyCode, ShortStr};
use bytes::{Bytes, BytesMut};

use super::heartbeat::Heartbeat;
use super::{encode, short, Event, Phase, Proto, Tuning, FRAME_MIN_SIZE};
use crate::auth::SaslMechanism;
use crate::error::Error;

impl<T, U> Proto<T, U> {
    /// `connection.open-ok`: the connection is open.
    pub(super) fn on_open_ok(&mut self) {
        self.phase = Phase::Open;
        self.deadline = None;
        self.events.push_back(Event::Opened {
            server_properties: std::mem::take(&mut self.server_properties),
            tuning: self.tuning,
        });
    }

    pub(super) fn on_start(&mut self, start: connection::Start) {
        if (start.version_major, start.version_minor) != (0, 9) {
            return self.fail(
                Error::ProtocolVersion(amqp_wire::ProtocolHeader {
                    protocol_id: 0,
                    major: start.version_major,
                    minor: start.version_minor,
                    revision: 0,
                }),
                None,
            );
        }
        let offered = String::from_utf8_lossy(&start.mechanisms).into_owned();
        let offered_list: Vec<&str> = offered.split_ascii_whitespace().collect();
        let Some(mechanism) = self.settings.mechanisms.iter().copied().find(|m| {
            offered_list
                .iter()
                .any(|o| o.eq_ignore_ascii_case(m.name()))
        }) else {
            let wanted: Vec<&str> = self.settings.mechanisms.iter().map(|m| m.name()).collect();
            return self.fail(
                Error::Authentication(format!(
                    "no common SASL mechanism: the server offers [{}], the client is configured \
                     for [{}]",
                    offered_list.join(", "),
                    wanted.join(", ")
                )),
                None,
            );
        };
        let locales = String::from_utf8_lossy(&start.locales).into_owned();
        let locale = if locales
            .split_ascii_whitespace()
            .any(|l| l == self.settings.locale)
        {
            self.settings.locale.clone()
        } else {
            locales
                .split_ascii_whitespace()
                .next()
                .unwrap_or(&self.settings.locale)
                .to_owned()
        };
        let response = sasl_response(mechanism, &self.settings.username, &self.settings.password);
        self.server_properties = start.server_properties;
        let start_ok = connection::StartOk {
            client_properties: self.settings.client_properties.clone(),
            mechanism: ShortStr::from_static(mechanism.name()),
            response,
            locale: short(&locale),
        };
        encode::method(&mut self.out, 0, &Method::from(start_ok));
        self.phase = Phase::AwaitTune;
    }

    pub(super) fn on_tune(&mut self, tune: connection::Tune) {
        let channel_max = negotiate(
            u32::from(self.settings.channel_max),
            u32::from(tune.channel_max),
        );
        let frame_max = negotiate(self.settings.frame_max, tune.frame_max);
        let heartbeat = negotiate(
            u32::from(self.settings.heartbeat),
            u32::from(tune.heartbeat),
        );
        // Spec: frame-max is at least frame-min-size (4096).
        if frame_max != 0 && frame_max < FRAME_MIN_SIZE {
            let text = format!(
                "negotiated frame_max {frame_max} is below the minimum frame size {FRAME_MIN_SIZE}"
            );
            return self.violation(ReplyCode::SYNTAX_ERROR, text, &Method::ConnectionTune(tune));
        }
        // The values came from u16s, so they fit back.
        let channel_max = u16::try_from(channel_max).unwrap_or(u16::MAX);
        let heartbeat = u16::try_from(heartbeat).unwrap_or(u16::MAX);
        self.tuning = Tuning {
            channel_max: if channel_max == 0 {
                u16::MAX
            } else {
                channel_max
            },
            frame_max,
            heartbeat,
        };
        let tune_ok = connection::TuneOk {
            channel_max,
            frame_max,
            heartbeat,
        };
        encode::method(&mut self.out, 0, &Method::ConnectionTuneOk(tune_ok));
        let open = connection::Open {
            virtual_host: short(&self.settings.vhost),
        };
        encode::method(&mut self.out, 0, &Method::ConnectionOpen(open));
        self.decoder.set_frame_max(frame_max);
        if heartbeat > 0 {
            let interval = Duration::from_secs(u64::from(heartbeat));
            self.heartbeat = Some(Heartbeat::new(interval, self.last_received));
        }
        self.phase = Phase::AwaitOpenOk;
    }
}

/// The negotiation rule of connection.tune: the lower of the two values, where 0 means "no
/// limit" and so yields to the other side's value.
pub(super) fn negotiate(client: u32, server: u32) -> u32 {
    match (client, server) {
        (0, s) => s,
        (c, 0) => c,
        (c, s) => c.min(s),
    }
}

/// The message of [`Error::Authentication`] for a login refused with `ACCESS_REFUSED`: the
/// server's reply text, naming the code if the text does not.
pub(super) fn refused_login_text(text: &str) -> String {
    if text.contains("ACCESS_REFUSED") {
        text.to_owned()
    } else {
        format!("ACCESS_REFUSED - {text}")
    }
}

/// The SASL response for start-ok.
pub(super) fn sasl_response(mechanism: SaslMechanism, username: &str, password: &str) -> Bytes {
    match mechanism {
        // RFC 4616: authzid NUL authcid NUL passwd, with an empty authzid.
        SaslMechanism::Plain => {
            let mut r = Vec::with_capacity(username.len() + password.len() + 2);
            r.push(0);
            r.extend_from_slice(username.as_bytes());
            r.push(0);
            r.extend_from_slice(password.as_bytes());
            Bytes::from(r)
        }
        // A field table's entries (without the table's own length prefix): LOGIN and PASSWORD
        // as long strings.
        SaslMechanism::AmqPlain => {
            let mut r = BytesMut::new();
            for (key, value) in [("LOGIN", username), ("PASSWORD", password)] {
                r.extend_from_slice(&[key.len() as u8]);
                r.extend_from_slice(key.as_bytes());
                r.extend_from_slice(b"S");
                r.extend_from_slice(&(value.len() as u32).to_be_bytes());
                r.extend_from_slice(value.as_bytes());
            }
            r.freeze()
        }
        // The identity comes from the TLS client certificate.
        SaslMechanism::External => Bytes::new(),
    }
}
