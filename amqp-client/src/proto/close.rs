//! Closing and failing: the application's close, the server's close, both crossing, the end
//! of the transport, and protocol violations by the peer turned into a `connection.close` with
//! the right reply code. Whatever way the connection ends, [`Event::Closed`] is emitted once,
//! with every request still pending.

use std::sync::Arc;
use std::time::Instant;

use amqp_wire::{connection, Method, ReplyCode, WireError};

use super::channels::Chan;
use super::handshake::refused_login_text;
use super::{encode, short, Event, Phase, Proto};
use crate::error::{CloseReason, Error, Initiator, Scope};

impl<T, U> Proto<T, U> {
    /// The transport reached end of file.
    pub(crate) fn handle_eof(&mut self) {
        let what = match self.phase {
            Phase::Closed => return,
            Phase::Closing => {
                // The peer closed the socket instead of answering close-ok: close is done.
                self.finish_close();
                return;
            }
            Phase::AwaitStart => "before connection.start (is this an AMQP 0-9-1 port?)",
            Phase::AwaitTune => "after the login was sent (credentials refused?)",
            Phase::AwaitOpenOk => "while opening the virtual host",
            Phase::Open => "without an AMQP close",
        };
        self.fail(
            Error::io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the peer closed the connection {what}"),
            )),
            None,
        );
    }

    /// Reading or writing the transport failed.
    pub(crate) fn handle_io_error(&mut self, e: std::io::Error) {
        if self.phase == Phase::Closing && self.error.is_some() {
            self.finish_close();
            return;
        }
        if self.phase != Phase::Closed {
            self.fail(Error::io(e), None);
        }
    }

    /// Drops the connection at once with `error` (nothing is sent): recovery gives up on a
    /// connection it could not restore.
    pub(crate) fn abort(&mut self, error: Error) {
        self.fail(error, None);
    }

    /// Starts the graceful close of the connection. [`Event::Closed`] follows when the server
    /// answers (or the close timeout passes).
    pub(crate) fn close(&mut self, code: ReplyCode, text: &str, now: Instant) {
        match self.phase {
            Phase::Closing | Phase::Closed => return,
            Phase::Open | Phase::AwaitOpenOk => {
                let close = connection::Close {
                    reply_code: code,
                    reply_text: short(text),
                    class_id: 0,
                    method_id: 0,
                };
                encode::method(&mut self.out, 0, &Method::ConnectionClose(close));
                self.phase = Phase::Closing;
                self.deadline = Some(now + self.settings.close_timeout);
            }
            Phase::AwaitStart | Phase::AwaitTune => self.phase = Phase::Closed,
        }
        self.error = Some(Error::ConnectionClosed(Arc::new(CloseReason {
            code,
            text: text.to_owned(),
            class_id: 0,
            method_id: 0,
            initiator: Initiator::User,
            scope: Scope::Connection,
        })));
        if self.phase == Phase::Closed {
            self.report_closed();
        }
    }

    /// The server's `connection.close`: answered with close-ok; the connection ends with the
    /// server's reason (or, during the handshake, with a refused login).
    pub(super) fn on_server_close(&mut self, close: &connection::Close) {
        encode::method(
            &mut self.out,
            0,
            &Method::ConnectionCloseOk(connection::CloseOk {}),
        );
        let reason = CloseReason {
            code: close.reply_code,
            text: close.reply_text.as_str().to_owned(),
            class_id: close.class_id,
            method_id: close.method_id,
            initiator: Initiator::Server,
            scope: Scope::Connection,
        };
        let error =
            if self.phase == Phase::AwaitTune && close.reply_code == ReplyCode::ACCESS_REFUSED {
                // With authentication_failure_close a refused login arrives here, in
                // answer to start-ok. (A 403 after tune refuses the virtual host and keeps
                // its close reason.)
                Error::Authentication(refused_login_text(&reason.text))
            } else {
                Error::ConnectionClosed(Arc::new(reason))
            };
        if self.phase == Phase::Closing {
            // Both sides closed at once: ours is answered by theirs. Unless a
            // failure was already reported, the connection ends with the server's
            // reason (so the application's close() returns it).
            if !self.closed_reported {
                self.error = Some(error);
            }
            self.finish_close();
        } else {
            self.phase = Phase::Closed;
            self.error = Some(error.clone());
            self.report(error);
        }
    }

    pub(super) fn wire_error(&mut self, e: WireError) {
        let code = match &e {
            WireError::ProtocolVersionMismatch { server } => {
                return self.fail(Error::ProtocolVersion(*server), None);
            }
            WireError::UnknownMethod { .. } => ReplyCode::COMMAND_INVALID,
            WireError::Truncated { .. }
            | WireError::TrailingBytes { .. }
            | WireError::InvalidUtf8 { .. }
            | WireError::StringTooLong { .. }
            | WireError::UnknownFieldType { .. }
            | WireError::NestingTooDeep { .. }
            | WireError::Domain { .. } => ReplyCode::SYNTAX_ERROR,
            _ => ReplyCode::FRAME_ERROR,
        };
        if self.phase == Phase::AwaitStart {
            // Nothing AMQP has been said yet; there is no one to send a close to.
            let text = format!("{e} (is this an AMQP 0-9-1 server?)");
            return self.fail(library_close(code, text, 0, 0), None);
        }
        self.violation_ids(code, e.to_string(), 0, 0);
    }

    pub(super) fn violation(&mut self, code: ReplyCode, text: String, method: &Method) {
        self.violation_ids(code, text, method.class_id(), method.method_id());
    }

    /// The peer broke the protocol: close the connection with `code` and fail everything.
    pub(super) fn violation_ids(
        &mut self,
        code: ReplyCode,
        text: String,
        class_id: u16,
        method_id: u16,
    ) {
        if matches!(self.phase, Phase::Closing | Phase::Closed) {
            return;
        }
        tracing::warn!(code = ?code, %text, "closing the connection: protocol violation by the peer");
        let close = connection::Close {
            reply_code: code,
            reply_text: short(&text),
            class_id,
            method_id,
        };
        let error = library_close(code, text, class_id, method_id);
        self.fail(error, Some(close));
    }

    /// Ends the connection with `error`, failing every pending request. With `close`, sends it
    /// and waits for close-ok; without, the connection is closed at once.
    pub(super) fn fail(&mut self, error: Error, close: Option<connection::Close>) {
        if self.phase == Phase::Closed {
            return;
        }
        match close {
            Some(close) if !matches!(self.phase, Phase::AwaitStart | Phase::Closing) => {
                encode::method(&mut self.out, 0, &Method::ConnectionClose(close));
                self.phase = Phase::Closing;
                // The close-ok wait is bounded; a dead peer does not keep us here.
                self.deadline = Some(self.last_received + self.settings.close_timeout);
            }
            _ => self.phase = Phase::Closed,
        }
        self.error = Some(error.clone());
        self.report(error);
    }

    /// Our close was answered (or timed out, or the socket went away).
    pub(super) fn finish_close(&mut self) {
        self.phase = Phase::Closed;
        self.deadline = None;
        self.report_closed();
    }

    pub(super) fn report_closed(&mut self) {
        let error = self.error.clone().unwrap_or_else(|| {
            library_close(
                ReplyCode::CONNECTION_FORCED,
                "connection closed".to_owned(),
                0,
                0,
            )
        });
        self.report(error);
    }

    /// Emits [`Event::Closed`] once.
    pub(super) fn report(&mut self, error: Error) {
        if self.closed_reported {
            return;
        }
        self.closed_reported = true;
        let mut pending = Vec::new();
        for slot in &mut self.channels {
            let Some(mut chan) = slot.take() else {
                continue;
            };
            pending.extend(chan.drain_tokens());
            // The owner's record outlives the connection: recovery opens the channel again.
            *slot = chan.user.map(Chan::detached);
        }
        self.events.push_back(Event::Closed { error, pending });
    }
}

/// A connection error the library started (a protocol violation by the peer, or a close
/// nobody explained).
pub(super) fn library_close(code: ReplyCode, text: String, class_id: u16, method_id: u16) -> Error {
    Error::ConnectionClosed(Arc::new(CloseReason {
        code,
        text,
        class_id,
        method_id,
        initiator: Initiator::Library,
        scope: Scope::Connection,
    }))
}
