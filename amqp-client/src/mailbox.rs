//! A bounded single-consumer queue between the driver task and a stream the application polls
//! (a consumer's deliveries, a channel's returned messages, connection events).
//!
//! The bound is enforced by back-pressure, not by dropping: when a push fills the mailbox the
//! driver stops reading from the socket and parks itself here; the stream wakes it again once
//! it has taken the mailbox down to half full. So a slow consumer slows the socket reads (and
//! through TCP, the broker) instead of growing memory.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::error::Error;

/// How a mailbox ended.
#[derive(Debug)]
enum End {
    /// Cleanly: the stream ends after the buffered items.
    Clean,
    /// With an error, handed out once after the buffered items.
    Error(Error),
    /// The error has been handed out.
    Reported,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    reader: Option<Waker>,
    driver: Option<Waker>,
    end: Option<End>,
    /// The reading side is gone; pushes are refused.
    abandoned: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Mailbox<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks leaves no torn state worth refusing to read:
    // every critical section either completes its update or changes nothing.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed<T> {
    /// Stored; `full` says the driver should stop reading until [`Mailbox::poll_space`] says
    /// otherwise.
    Stored { full: bool },
    /// The mailbox is abandoned or ended; the item comes back.
    Refused(T),
}

impl<T> Mailbox<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                reader: None,
                driver: None,
                end: None,
                abandoned: false,
            }),
            capacity: capacity.max(1),
        }
    }

    /// The most items held before the driver pauses.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many items wait to be taken.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    /// Driver side: adds an item and wakes the reader.
    pub(crate) fn push(&self, item: T) -> Pushed<T> {
        let mut wakes = Vec::new();
        let r = self.push_deferred(item, &mut wakes);
        wakes.into_iter().for_each(Waker::wake);
        r
    }

    /// Driver side: adds an item; the reader's waker (if it waits) goes to `wakes`, for the
    /// caller to wake once it has pushed a whole batch, so that a reader is woken once per
    /// batch rather than once per item.
    pub(crate) fn push_deferred(&self, item: T, wakes: &mut Vec<Waker>) -> Pushed<T> {
        let mut s = lock(&self.state);
        if s.abandoned || s.end.is_some() {
            return Pushed::Refused(item);
        }
        s.items.push_back(item);
        let full = s.items.len() >= self.capacity;
        if let Some(w) = s.reader.take() {
            wakes.push(w);
        }
        Pushed::Stored { full }
    }

    /// Driver side: ready once the mailbox has drained to half its capacity (or nobody reads it
    /// any more); otherwise parks the driver's waker here.
    pub(crate) fn poll_space(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(&self.state);
        if s.abandoned || s.end.is_some() || s.items.len() <= self.capacity / 2 {
            return Poll::Ready(());
        }
        match &s.driver {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.driver = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Ends the mailbox: the reader gets what is buffered, then the error (if any), then the end.
    pub(crate) fn close(&self, error: Option<Error>) {
        let mut s = lock(&self.state);
        if s.end.is_none() {
            s.end = Some(error.map_or(End::Clean, End::Error));
        }
        let reader = s.reader.take();
        let driver = s.driver.take();
        drop(s);
        for w in [reader, driver].into_iter().flatten() {
            w.wake();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).end.is_some()
    }

    /// Reader side: the next item, the end error, or the end.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        let mut s = lock(&self.state);
        if let Some(item) = s.items.pop_front() {
            let driver = if s.items.len() <= self.capacity / 2 {
                s.driver.take()
            } else {
                None
            };
            drop(s);
            if let Some(w) = driver {
                w.wake();
            }
            return Poll::Ready(Some(Ok(item)));
        }
        match s.end.take() {
            Some(End::Error(e)) => {
                s.end = Some(End::Reported);
                Poll::Ready(Some(Err(e)))
            }
            Some(end) => {
                s.end = Some(end);
                Poll::Ready(None)
            }
            None => {
                match &s.reader {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => s.reader = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// Reader side: the reader goes away; returns what was still buffered and wakes a parked
    /// driver.
    pub(crate) fn abandon(&self) -> VecDeque<T> {
        let mut s = lock(&self.state);
        s.abandoned = true;
        let items = std::mem::take(&mut s.items);
        let driver = s.driver.take();
        drop(s);
        if let Some(w) = driver {
            w.wake();
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn push_reports_full_at_capacity_and_driver_resumes_at_half() {
        let m = Mailbox::new(4);
        let (driver_count, driver) = waker();
        let mut dcx = Context::from_waker(&driver);
        let (_, reader) = waker();
        let mut rcx = Context::from_waker(&reader);
        for i in 0..3 {
            assert_eq!(m.push(i), Pushed::Stored { full: false });
        }
        assert_eq!(m.push(3), Pushed::Stored { full: true });
        assert_eq!(m.len(), 4);
        assert!(m.poll_space(&mut dcx).is_pending());
        assert!(matches!(m.poll_next(&mut rcx), Poll::Ready(Some(Ok(0)))));
        assert_eq!(
            driver_count.0.load(Ordering::SeqCst),
            0,
            "3 left: above half"
        );
        assert!(m.poll_space(&mut dcx).is_pending());
        assert!(matches!(m.poll_next(&mut rcx), Poll::Ready(Some(Ok(1)))));
        assert_eq!(driver_count.0.load(Ordering::SeqCst), 1, "2 left: woken");
        assert!(m.poll_space(&mut dcx).is_ready());
    }

    #[test]
    fn reader_is_woken_by_push_and_sees_error_once_then_end() {
        let m = Mailbox::new(8);
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(m.poll_next(&mut cx).is_pending());
        let _ = m.push("a");
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        m.close(Some(Error::ConsumerCancelled("t".into())));
        assert!(matches!(m.poll_next(&mut cx), Poll::Ready(Some(Ok("a")))));
        assert!(matches!(
            m.poll_next(&mut cx),
            Poll::Ready(Some(Err(Error::ConsumerCancelled(_))))
        ));
        assert!(matches!(m.poll_next(&mut cx), Poll::Ready(None)));
        assert!(matches!(m.poll_next(&mut cx), Poll::Ready(None)));
        assert!(matches!(m.push("b"), Pushed::Refused("b")));
    }

    #[test]
    fn abandon_returns_buffered_items_and_releases_the_driver() {
        let m = Mailbox::new(2);
        let _ = m.push(1);
        let _ = m.push(2);
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(m.poll_space(&mut cx).is_pending());
        let left = m.abandon();
        assert_eq!(left, VecDeque::from([1, 2]));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(m.poll_space(&mut cx).is_ready());
        assert!(matches!(m.push(3), Pushed::Refused(3)));
    }
}
