//! A bounded single-consumer queue between the driver task and a stream the application polls
//! (a consumer's deliveries, a channel's returned messages, connection events).
//!
//! The bound is enforced by back-pressure, not by dropping: when a push fills the mailbox the
//! driver stops reading from the socket and parks itself here; the stream wakes it again once
//! it has taken the mailbox down to half full. So a slow consumer slows the socket reads (and
//! through TCP, the broker) instead of growing memory.

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll, Waker};

// Under `cfg(mailbox_loom)` the mailbox's own lock and atomics are loom's, so the model checker sees
// every interleaving of driver and reader (`RUSTFLAGS="--cfg mailbox_loom" cargo test -p amqp-client
// --lib mailbox`, run by scripts/test).
#[cfg(all(test, mailbox_loom))]
use loom::sync::{
    atomic::{AtomicUsize, Ordering},
    Mutex, MutexGuard,
};
#[cfg(not(all(test, mailbox_loom)))]
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Mutex, MutexGuard,
};

use crate::error::Error;

/// The bit of `Mailbox::in_reader` that says the driver is parked.
const WAITING: usize = 1 << (usize::BITS - 1);

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

/// How much of the byte budget an item uses (a message: its body).
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// Total weight of `items`.
    weight: usize,
    reader: Option<Waker>,
    driver: Option<Waker>,
    end: Option<End>,
    /// The reading side is gone; pushes are refused.
    abandoned: bool,
}

/// See the module documentation.
///
/// The reader takes items in batches: when its own buffer ([`Receiver`]) runs dry it swaps it
/// with the shared one under the lock, so reader and driver meet on the lock once per batch
/// rather than once per item. Items in the reader's hands still count against the capacity
/// (`in_reader`).
#[derive(Debug)]
pub(crate) struct Mailbox<T> {
    state: Mutex<State<T>>,
    /// Items the reader has taken out of `state` but not yet handed out, with the `WAITING` bit
    /// set while the driver is parked in [`poll_space`](Self::poll_space). One atomic for both,
    /// so that the reader's decrement and the driver's flag are read-modify-writes of the same
    /// location: whichever comes second sees the other, with no reliance on store-load ordering
    /// between two locations (which is what loom can check).
    in_reader: AtomicUsize,
    /// The weight of the reader's items; decremented before `in_reader`, whose ordering
    /// publishes it.
    in_reader_weight: AtomicUsize,
    capacity: usize,
    max_weight: usize,
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of our locks leaves no torn state worth refusing to read:
    // every critical section either completes its update or changes nothing.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`] for the mailbox's own state (loom's mutex under `cfg(mailbox_loom)`).
fn lock_state<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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

impl<T: Weigh> Mailbox<T> {
    /// A mailbox that holds at most `capacity` items and `max_weight` octets of them before
    /// the driver pauses (a single item heavier than that still gets through).
    pub(crate) fn new(capacity: usize, max_weight: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                weight: 0,
                reader: None,
                driver: None,
                end: None,
                abandoned: false,
            }),
            in_reader: AtomicUsize::new(0),
            in_reader_weight: AtomicUsize::new(0),
            capacity: capacity.max(1),
            max_weight: max_weight.max(1),
        }
    }

    /// The most items held before the driver pauses.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    fn held(&self, s: &State<T>) -> usize {
        s.items.len() + (self.in_reader.load(Ordering::SeqCst) & !WAITING)
    }

    fn held_weight(&self, s: &State<T>) -> usize {
        s.weight + self.in_reader_weight.load(Ordering::SeqCst)
    }

    fn is_full(&self, s: &State<T>) -> bool {
        self.held(s) >= self.capacity || self.held_weight(s) >= self.max_weight
    }

    fn has_room(&self, s: &State<T>) -> bool {
        self.held(s) <= self.capacity / 2 && self.held_weight(s) <= self.max_weight / 2
    }

    /// How many items wait to be handed out (in the mailbox or the reader's batch).
    pub(crate) fn len(&self) -> usize {
        self.held(&lock_state(&self.state))
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
        let mut s = lock_state(&self.state);
        if s.abandoned || s.end.is_some() {
            return Pushed::Refused(item);
        }
        s.weight += item.weight();
        s.items.push_back(item);
        let full = self.is_full(&s);
        if let Some(w) = s.reader.take() {
            wakes.push(w);
        }
        Pushed::Stored { full }
    }

    /// Driver side: ready once the mailbox has drained to half its capacity (or nobody reads it
    /// any more); otherwise parks the driver's waker here.
    pub(crate) fn poll_space(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock_state(&self.state);
        let drained = |s: &State<T>| s.abandoned || s.end.is_some() || self.has_room(s);
        if drained(&s) {
            return Poll::Ready(());
        }
        match &s.driver {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.driver = Some(cx.waker().clone()),
        }
        self.in_reader.fetch_or(WAITING, Ordering::SeqCst);
        // The reader may have handed items out between the check and the flag.
        if drained(&s) {
            self.in_reader.fetch_and(!WAITING, Ordering::SeqCst);
            s.driver = None;
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Reader side, after handing an item out (`before` is `in_reader` as it was before the
    /// decrement): wakes a parked driver once there is room.
    fn release_driver(&self, before: usize) {
        if before & WAITING == 0 {
            return;
        }
        let mut s = lock_state(&self.state);
        if !self.has_room(&s) {
            return;
        }
        self.in_reader.fetch_and(!WAITING, Ordering::SeqCst);
        let driver = s.driver.take();
        drop(s);
        if let Some(w) = driver {
            w.wake();
        }
    }

    /// Ends the mailbox: the reader gets what is buffered, then the error (if any), then the end.
    pub(crate) fn close(&self, error: Option<Error>) {
        let mut s = lock_state(&self.state);
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

    /// Drops everything buffered in the mailbox (not the reader's batch), without ending it,
    /// and wakes a parked driver.
    pub(crate) fn clear(&self) {
        let mut s = lock_state(&self.state);
        s.items.clear();
        s.weight = 0;
        let driver = s.driver.take();
        drop(s);
        if let Some(w) = driver {
            w.wake();
        }
    }

    /// Whether the reader went away or the mailbox ended.
    pub(crate) fn is_gone(&self) -> bool {
        let s = lock_state(&self.state);
        s.abandoned || s.end.is_some()
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        lock_state(&self.state).end.is_some()
    }

    /// Reader side: the next item, the end error, or the end. `local` is the reader's batch.
    fn poll_next(
        &self,
        local: &mut VecDeque<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<T, Error>>> {
        if local.is_empty() {
            let mut s = lock_state(&self.state);
            if s.items.is_empty() {
                return match s.end.take() {
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
                };
            }
            std::mem::swap(&mut s.items, local);
            self.in_reader.fetch_add(local.len(), Ordering::SeqCst);
            self.in_reader_weight
                .fetch_add(std::mem::take(&mut s.weight), Ordering::SeqCst);
        }
        match local.pop_front() {
            Some(item) => {
                self.in_reader_weight
                    .fetch_sub(item.weight(), Ordering::SeqCst);
                let before = self.in_reader.fetch_sub(1, Ordering::SeqCst);
                self.release_driver(before);
                Poll::Ready(Some(Ok(item)))
            }
            None => Poll::Pending,
        }
    }

    /// The reader goes away: returns what was still buffered and wakes a parked driver.
    pub(crate) fn abandon(&self) -> VecDeque<T> {
        let mut s = lock_state(&self.state);
        s.abandoned = true;
        s.weight = 0;
        let items = std::mem::take(&mut s.items);
        let driver = s.driver.take();
        drop(s);
        if let Some(w) = driver {
            w.wake();
        }
        items
    }
}

/// The reading end of a [`Mailbox`], with its current batch.
#[derive(Debug)]
pub(crate) struct Receiver<T> {
    mailbox: Arc<Mailbox<T>>,
    local: VecDeque<T>,
}

impl<T: Weigh> Receiver<T> {
    pub(crate) fn new(mailbox: Arc<Mailbox<T>>) -> Self {
        Self {
            mailbox,
            local: VecDeque::new(),
        }
    }

    pub(crate) fn mailbox(&self) -> &Arc<Mailbox<T>> {
        &self.mailbox
    }

    /// The next item, the end error, or the end.
    ///
    /// Each item spends scheduler budget, like tokio's own channels: a reader that never
    /// waits then still yields now and then, so the driver gets to send the reader's acks.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let r = self.mailbox.poll_next(&mut self.local, cx);
        if r.is_ready() {
            coop.made_progress();
        }
        r
    }

    /// Stops reading: everything not handed out yet, oldest first.
    pub(crate) fn abandon(&mut self) -> VecDeque<T> {
        let mut items = std::mem::take(&mut self.local);
        self.mailbox
            .in_reader
            .fetch_sub(items.len(), Ordering::SeqCst);
        let weight: usize = items.iter().map(Weigh::weight).sum();
        self.mailbox
            .in_reader_weight
            .fetch_sub(weight, Ordering::SeqCst);
        items.extend(self.mailbox.abandon());
        items
    }
}

#[cfg(all(test, not(mailbox_loom)))]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Weigh for i32 {
        fn weight(&self) -> usize {
            0
        }
    }

    impl Weigh for &str {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn push_reports_full_at_capacity_and_driver_resumes_at_half() {
        let m = Arc::new(Mailbox::new(4, usize::MAX));
        let mut r = Receiver::new(m.clone());
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
        assert!(matches!(r.poll_next(&mut rcx), Poll::Ready(Some(Ok(0)))));
        assert_eq!(
            driver_count.0.load(Ordering::SeqCst),
            0,
            "3 left: above half"
        );
        assert!(m.poll_space(&mut dcx).is_pending());
        assert!(matches!(r.poll_next(&mut rcx), Poll::Ready(Some(Ok(1)))));
        assert_eq!(driver_count.0.load(Ordering::SeqCst), 1, "2 left: woken");
        assert!(m.poll_space(&mut dcx).is_ready());
    }

    #[test]
    fn reader_is_woken_by_push_and_sees_error_once_then_end() {
        let m = Arc::new(Mailbox::new(8, usize::MAX));
        let mut r = Receiver::new(m.clone());
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(r.poll_next(&mut cx).is_pending());
        let _ = m.push("a");
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        m.close(Some(Error::ConsumerCancelled("t".into())));
        assert!(matches!(r.poll_next(&mut cx), Poll::Ready(Some(Ok("a")))));
        assert!(matches!(
            r.poll_next(&mut cx),
            Poll::Ready(Some(Err(Error::ConsumerCancelled(_))))
        ));
        assert!(matches!(r.poll_next(&mut cx), Poll::Ready(None)));
        assert!(matches!(r.poll_next(&mut cx), Poll::Ready(None)));
        assert!(matches!(m.push("b"), Pushed::Refused("b")));
    }

    #[test]
    fn abandon_returns_buffered_items_and_releases_the_driver() {
        let m = Arc::new(Mailbox::new(3, usize::MAX));
        let mut r = Receiver::new(m.clone());
        let _ = m.push(1);
        let _ = m.push(2);
        let (_, rw) = waker();
        // The reader takes a batch (both) and hands one out.
        assert!(matches!(
            r.poll_next(&mut Context::from_waker(&rw)),
            Poll::Ready(Some(Ok(1)))
        ));
        let _ = m.push(3);
        let _ = m.push(4);
        assert_eq!(m.len(), 3, "one in the reader's batch, two in the mailbox");
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(m.poll_space(&mut cx).is_pending());
        let left = r.abandon();
        assert_eq!(left, VecDeque::from([2, 3, 4]));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(m.poll_space(&mut cx).is_ready());
        assert!(matches!(m.push(5), Pushed::Refused(5)));
    }

    #[test]
    fn items_in_the_readers_batch_count_against_capacity() {
        let m = Arc::new(Mailbox::new(4, usize::MAX));
        let mut r = Receiver::new(m.clone());
        let (_, rw) = waker();
        let mut rcx = Context::from_waker(&rw);
        for i in 0..3 {
            let _ = m.push(i);
        }
        assert!(matches!(r.poll_next(&mut rcx), Poll::Ready(Some(Ok(0)))));
        // Two wait in the reader's batch; two more fill the mailbox to capacity.
        assert_eq!(m.push(3), Pushed::Stored { full: false });
        assert_eq!(m.push(4), Pushed::Stored { full: true });
        let (driver_count, dw) = waker();
        let mut dcx = Context::from_waker(&dw);
        assert!(m.poll_space(&mut dcx).is_pending());
        // Handing out from the batch (no lock on the mailbox) releases the driver at half.
        assert!(matches!(r.poll_next(&mut rcx), Poll::Ready(Some(Ok(1)))));
        assert_eq!(driver_count.0.load(Ordering::SeqCst), 0);
        assert!(matches!(r.poll_next(&mut rcx), Poll::Ready(Some(Ok(2)))));
        assert_eq!(driver_count.0.load(Ordering::SeqCst), 1);
        assert!(m.poll_space(&mut dcx).is_ready());
        let rest: Vec<i32> = std::iter::from_fn(|| match r.poll_next(&mut rcx) {
            Poll::Ready(Some(Ok(i))) => Some(i),
            _ => None,
        })
        .collect();
        assert_eq!(rest, vec![3, 4]);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn weight_bounds_the_mailbox_too() {
        let m = Arc::new(Mailbox::new(100, 10));
        let mut r = Receiver::new(m.clone());
        assert_eq!(m.push("aaaa"), Pushed::Stored { full: false });
        assert_eq!(m.push("bbbbbb"), Pushed::Stored { full: true });
        let (driver_count, dw) = waker();
        let mut dcx = Context::from_waker(&dw);
        assert!(m.poll_space(&mut dcx).is_pending());
        let (_, rw) = waker();
        let mut rcx = Context::from_waker(&rw);
        assert!(matches!(
            r.poll_next(&mut rcx),
            Poll::Ready(Some(Ok("aaaa")))
        ));
        assert_eq!(
            driver_count.0.load(Ordering::SeqCst),
            0,
            "6 of 10 octets held"
        );
        assert!(matches!(
            r.poll_next(&mut rcx),
            Poll::Ready(Some(Ok("bbbbbb")))
        ));
        assert_eq!(driver_count.0.load(Ordering::SeqCst), 1);
        // One item heavier than the whole budget still goes through.
        assert_eq!(m.push("x".repeat(50).leak()), Pushed::Stored { full: true });
        assert!(matches!(r.poll_next(&mut rcx), Poll::Ready(Some(Ok(_)))));
        assert!(m.poll_space(&mut dcx).is_ready());
    }
}

/// Model-checked with loom: every interleaving of the driver and the reader (within the
/// preemption bound) ends with every item handed out in order and nobody left parked — a lost
/// wakeup shows up as a deadlock.
#[cfg(all(test, mailbox_loom))]
mod loom_tests {
    use super::*;
    use std::future::poll_fn;

    impl Weigh for u32 {
        fn weight(&self) -> usize {
            1
        }
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// Pushes `items` as the driver does: parks on `poll_space` whenever a push filled it.
    async fn drive(m: &Mailbox<u32>, items: std::ops::Range<u32>) -> usize {
        let mut refused = 0;
        for i in items {
            match m.push(i) {
                Pushed::Stored { full: true } => poll_fn(|cx| m.poll_space(cx)).await,
                Pushed::Stored { full: false } => {}
                Pushed::Refused(_) => refused += 1,
            }
        }
        refused
    }

    async fn read_all(m: &Mailbox<u32>) -> (Vec<u32>, Option<Error>) {
        let mut local = VecDeque::new();
        let mut got = Vec::new();
        loop {
            match poll_fn(|cx| m.poll_next(&mut local, cx)).await {
                Some(Ok(i)) => got.push(i),
                Some(Err(e)) => return (got, Some(e)),
                None => return (got, None),
            }
        }
    }

    #[test]
    fn a_driver_parked_on_a_full_mailbox_is_always_released() {
        model(|| {
            let m = Arc::new(Mailbox::new(2, usize::MAX));
            let driver = {
                let m = m.clone();
                loom::thread::spawn(move || {
                    loom::future::block_on(async {
                        let refused = drive(&m, 0..4).await;
                        m.close(None);
                        refused
                    })
                })
            };
            let (got, end) = loom::future::block_on(read_all(&m));
            assert_eq!(driver.join().unwrap(), 0); // ok: loom test; a panicked model thread fails it
            assert_eq!(got, vec![0, 1, 2, 3]);
            assert!(end.is_none());
            assert_eq!(m.len(), 0);
        });
    }

    #[test]
    fn the_weight_bound_releases_the_driver_too() {
        model(|| {
            // Three items of weight 1 fill a budget of 3 octets; capacity never binds.
            let m = Arc::new(Mailbox::new(100, 3));
            let driver = {
                let m = m.clone();
                loom::thread::spawn(move || {
                    loom::future::block_on(async {
                        let refused = drive(&m, 0..4).await;
                        m.close(Some(Error::ConsumerCancelled("model".into())));
                        refused
                    })
                })
            };
            let (got, end) = loom::future::block_on(read_all(&m));
            assert_eq!(driver.join().unwrap(), 0); // ok: loom test; a panicked model thread fails it
            assert_eq!(got, vec![0, 1, 2, 3]);
            assert!(matches!(end, Some(Error::ConsumerCancelled(_))));
        });
    }

    #[test]
    fn abandoning_the_reader_releases_a_parked_driver_and_loses_nothing() {
        model(|| {
            let m = Arc::new(Mailbox::new(2, usize::MAX));
            let driver = {
                let m = m.clone();
                loom::thread::spawn(move || loom::future::block_on(drive(&m, 0..4)))
            };
            let mut r = Receiver::new(m.clone());
            // The reader takes one item (when there is one yet), then goes away.
            let first = loom::future::block_on(poll_fn(|cx| r.mailbox.poll_next(&mut r.local, cx)));
            let left = r.abandon();
            let refused = driver.join().unwrap(); // ok: loom test; a panicked model thread fails it
            let mut seen: Vec<u32> = Vec::new();
            seen.extend(first.map(|i| i.unwrap())); // ok: loom test; only `Ok` items are sent
            seen.extend(left);
            // Whatever was not refused after the abandon came back, in order.
            assert_eq!(seen.len() + refused, 4);
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
            assert_eq!(seen.first(), Some(&0));
        });
    }
}
