//! The task that owns the transport: it moves bytes between the socket and the state machine,
//! runs the state machine's timers, and does nothing else.
//!
//! Reads go into one growing `BytesMut`; frames are split off it, so message bodies reach the
//! application without a copy. Writes are coalesced: everything the handles queued since the
//! last write goes out in one `write` call, from a buffer swapped with the state machine's, so
//! neither side reallocates in the steady state.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Sleep;

use crate::connection::{Inner, Shared};
use crate::router::Pause;

/// How much room a read asks for.
const READ_CHUNK: usize = 64 * 1024;
/// Loop turns before yielding to the scheduler even if there is more to do.
const BUDGET: u32 = 64;
/// How long a finished connection waits for its last bytes to be written, and then for the
/// transport's own shutdown (TLS close_notify).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

struct Driver<T> {
    io: T,
    shared: Arc<Shared>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    written: usize,
    flush: bool,
    read_done: bool,
    paused: Option<Pause>,
    sleep: Pin<Box<Sleep>>,
    sleep_at: Option<Instant>,
    /// When the state machine finished: the last bytes get [`SHUTDOWN_GRACE`] to go out.
    finished_at: Option<Instant>,
    /// Since when bytes wait to be written and the socket takes none.
    stalled_since: Option<Instant>,
}

/// Runs the connection until it is closed and the last bytes are written.
pub(crate) async fn run<T>(io: T, shared: Arc<Shared>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let mut d = Driver {
        io,
        shared,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(64 * 1024),
        written: 0,
        flush: false,
        read_done: false,
        paused: None,
        sleep: Box::pin(tokio::time::sleep_until(far)),
        sleep_at: None,
        finished_at: None,
        stalled_since: None,
    };
    poll_fn(|cx| d.poll(cx)).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, d.io.shutdown()).await;
    tracing::trace!("connection driver finished");
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..BUDGET {
            match self.turn(cx) {
                Turn::Progress => continue,
                Turn::Idle => return Poll::Pending,
                Turn::Finished => return Poll::Ready(()),
            }
        }
        // More to do, but let other tasks run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn turn(&mut self, cx: &mut Context<'_>) -> Turn {
        let mut progress = false;
        let now = Instant::now();

        if let Some(pause) = &self.paused {
            if pause.poll_space(cx).is_ready() {
                self.paused = None;
                progress = true;
                self.shared
                    .lock("driver::resume")
                    .proto
                    .set_read_paused(false, now);
            }
        }

        // Input left over from earlier reads, timers, output: one critical section.
        let (finished, deadline, blocked) = {
            let mut inner = self.shared.lock("driver::turn");
            if self.paused.is_none() && !self.rbuf.is_empty() {
                process(&mut inner, &mut self.rbuf, &mut self.paused, now);
            }
            if inner.proto.next_deadline().is_some_and(|d| d <= now) {
                inner.proto.handle_timeout(now);
                dispatch(&mut inner, &mut self.paused, now);
            }
            match &inner.driver_waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.driver_waker = Some(cx.waker().clone()),
            }
            if self.wbuf.is_empty() {
                inner.proto.take_output(&mut self.wbuf);
                self.written = 0;
                if !self.wbuf.is_empty() {
                    // The output buffer has room again: publishers held back may go on.
                    inner.wake_writers();
                }
            }
            (
                inner.proto.is_finished(),
                inner.proto.next_deadline(),
                inner.proto.is_blocked(),
            )
        };

        // Write.
        let mut wrote = false;
        while self.written < self.wbuf.len() {
            let pending = self.wbuf.get(self.written..).unwrap_or_default();
            match Pin::new(&mut self.io).poll_write(cx, pending) {
                Poll::Ready(Ok(0)) => {
                    self.io_error(std::io::ErrorKind::WriteZero.into());
                    return Turn::Progress;
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    wrote = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.io_error(e);
                    return Turn::Progress;
                }
                Poll::Pending => break,
            }
        }
        let stall_limit = self
            .shared
            .write_stall_timeout
            .filter(|_| !finished && !blocked);
        let stall_deadline = match stall_limit {
            Some(limit) if self.written < self.wbuf.len() => {
                if wrote {
                    self.stalled_since = Some(now);
                }
                let since = *self.stalled_since.get_or_insert(now);
                if now.duration_since(since) >= limit {
                    self.stalled_since = None;
                    self.io_error(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the peer took no bytes for {limit:?}: writing stalled"),
                    ));
                    return Turn::Progress;
                }
                Some(since + limit)
            }
            _ => {
                self.stalled_since = None;
                None
            }
        };
        if !self.wbuf.is_empty() && self.written >= self.wbuf.len() {
            self.wbuf.clear();
            self.written = 0;
            self.flush = true;
            progress = true;
        }
        if self.flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush = false,
                Poll::Ready(Err(e)) => {
                    self.flush = false;
                    self.io_error(e);
                    return Turn::Progress;
                }
                Poll::Pending => {}
            }
        }

        if finished && self.wbuf.is_empty() && !self.flush {
            return Turn::Finished;
        }
        // A peer that stopped reading does not keep a closed connection's task alive.
        let deadline = if finished {
            let at = *self.finished_at.get_or_insert(now + SHUTDOWN_GRACE);
            if now >= at {
                return Turn::Finished;
            }
            Some(at)
        } else {
            match (deadline, stall_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };

        // Read, unless a full consumer holds us back.
        if self.paused.is_none() && !self.read_done && !finished {
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                self.rbuf.reserve(READ_CHUNK);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf) {
                Poll::Ready(Ok(0)) => {
                    self.read_done = true;
                    let mut inner = self.shared.lock("driver::eof");
                    // Frames already buffered come first.
                    process(&mut inner, &mut self.rbuf, &mut self.paused, now);
                    if self.paused.is_none() {
                        inner.proto.handle_eof();
                        dispatch(&mut inner, &mut self.paused, now);
                    }
                    progress = true;
                }
                Poll::Ready(Ok(_)) => {
                    let mut inner = self.shared.lock("driver::read");
                    inner.proto.note_received(now);
                    process(&mut inner, &mut self.rbuf, &mut self.paused, now);
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.read_done = true;
                    self.io_error(e);
                    progress = true;
                }
                Poll::Pending => {}
            }
        } else if self.read_done && self.paused.is_none() && !self.rbuf.is_empty() && !finished {
            // Input that waited for a consumer to drain, after the peer closed.
            let mut inner = self.shared.lock("driver::eof");
            process(&mut inner, &mut self.rbuf, &mut self.paused, now);
            if self.paused.is_none() {
                inner.proto.handle_eof();
                dispatch(&mut inner, &mut self.paused, now);
            }
            progress = true;
        }

        // Timer.
        match deadline {
            Some(at) => {
                if self.sleep_at != Some(at) {
                    self.sleep.as_mut().reset(at.into());
                    self.sleep_at = Some(at);
                }
                if self.sleep.as_mut().poll(cx).is_ready() {
                    self.sleep_at = None;
                    if finished {
                        return Turn::Finished;
                    }
                    let mut inner = self.shared.lock("driver::timer");
                    // The state machine decides what is due (the write-stall check runs in
                    // the next turn).
                    inner.proto.handle_timeout(Instant::now().max(at));
                    dispatch(&mut inner, &mut self.paused, now);
                    progress = true;
                }
            }
            None => self.sleep_at = None,
        }

        if progress {
            Turn::Progress
        } else {
            Turn::Idle
        }
    }

    fn io_error(&mut self, e: std::io::Error) {
        self.wbuf.clear();
        self.written = 0;
        let mut inner = self.shared.lock("driver::io_error");
        inner.proto.handle_io_error(e);
        let _ = inner.dispatch();
    }
}

/// Feeds every complete buffered frame to the state machine, until a consumer's buffer fills
/// up.
fn process(inner: &mut Inner, rbuf: &mut BytesMut, paused: &mut Option<Pause>, now: Instant) {
    while paused.is_none() && inner.proto.handle_input(now, rbuf) {
        dispatch(inner, paused, now);
    }
    dispatch(inner, paused, now);
}

fn dispatch(inner: &mut Inner, paused: &mut Option<Pause>, now: Instant) {
    if let Some(pause) = inner.dispatch() {
        if paused.is_none() {
            inner.proto.set_read_paused(true, now);
        }
        *paused = Some(pause);
    }
}

enum Turn {
    Progress,
    Idle,
    Finished,
}
