//! Publisher confirms: which published messages the broker has settled, and the futures that
//! wait for them.
//!
//! In confirm mode the broker numbers a channel's publishes 1, 2, 3, … and settles them with
//! `basic.ack`/`basic.nack`, one tag or "everything up to this tag" at a time. The tracker
//! keeps one small slot per unsettled (or settled but not yet collected) message in a ring
//! buffer indexed by tag, so publishing does not allocate. A message published `mandatory` that
//! cannot be routed is returned (`basic.return`) just before it is acked; the return is matched
//! to the lowest mandatory message the ack settles.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::channel::ChannelCore;
use crate::error::{Error, Result};
use crate::mailbox::lock;
use crate::message::{Confirmation, ReturnedMessage};

#[derive(Debug)]
enum State {
    Pending,
    Done(Confirmation),
    /// The outcome was handed out.
    Taken,
}

#[derive(Debug)]
struct Slot {
    state: State,
    waker: Option<Waker>,
    mandatory: bool,
    /// Someone still holds the future for this tag.
    wanted: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct ConfirmTracker {
    /// Tag of `slots[0]`.
    base: u64,
    slots: VecDeque<Slot>,
    /// Every tag below this one is settled.
    settled_below: u64,
    /// The highest tag handed out.
    last_tag: u64,
    /// How many handed-out tags are not settled.
    pending: u64,
    /// Nacked tags of this epoch, as inclusive ranges in tag order, kept while a
    /// `wait_for_confirms` in progress may still ask about them.
    nacks: Vec<(u64, u64)>,
    /// Every tag up to this one is covered by a `wait_for_confirms` that returned.
    reported: u64,
    /// Where each `wait_for_confirms` in progress starts (its answer covers the tags after).
    waits: Vec<u64>,
    waiters: Vec<(u64, Waker)>,
    /// Returns waiting for the ack that settles their message.
    returns: VecDeque<ReturnedMessage>,
    closed: Option<Error>,
    /// Counts connection losses: tags restart from 1 on a recovered channel, so a future is
    /// known by (epoch, tag).
    epoch: u64,
    /// What futures of an earlier epoch resolve to ([`Error::ConnectionLost`]).
    lost: Option<Error>,
    /// Outcomes that arrived before a loss but were not collected yet, by (epoch, tag).
    early: HashMap<(u64, u64), Confirmation>,
}

impl ConfirmTracker {
    /// Records a publish with `tag` (consecutive from 1).
    pub(crate) fn push(&mut self, tag: u64, mandatory: bool) {
        if self.slots.is_empty() {
            self.base = tag;
            if self.settled_below == 0 {
                self.settled_below = tag;
            }
        }
        self.last_tag = tag;
        self.pending += 1;
        self.slots.push_back(Slot {
            state: State::Pending,
            waker: None,
            mandatory,
            wanted: true,
        });
    }

    /// A `basic.return` arrived; the next ack will settle its message.
    pub(crate) fn returned(&mut self, message: ReturnedMessage) {
        self.returns.push_back(message);
    }

    fn slot(&mut self, tag: u64) -> Option<&mut Slot> {
        let i = tag.checked_sub(self.base)?;
        self.slots.get_mut(usize::try_from(i).ok()?)
    }

    /// `basic.ack` / `basic.nack` from the broker.
    /// Wakers of the futures this settles go to `wakes`.
    pub(crate) fn settle(&mut self, tag: u64, multiple: bool, ack: bool, wakes: &mut Vec<Waker>) {
        // A tag beyond what was published settles nothing more than everything published.
        let tag = tag.min(self.last_tag);
        let from = if multiple {
            self.settled_below.max(self.base)
        } else {
            tag
        };
        for t in from..=tag {
            let returned = match self.slot(t) {
                Some(s) if matches!(s.state, State::Pending) && s.mandatory && ack => true,
                Some(s) if matches!(s.state, State::Pending) => false,
                _ => continue,
            };
            let outcome = match (ack, returned.then(|| self.returns.pop_front()).flatten()) {
                (true, Some(message)) => Confirmation::Returned(Box::new(message)),
                (true, None) => Confirmation::Ack,
                (false, _) => {
                    match self.nacks.last_mut() {
                        Some((_, hi)) if *hi + 1 == t => *hi = t,
                        _ => self.nacks.push((t, t)),
                    }
                    Confirmation::Nack
                }
            };
            if let Some(s) = self.slot(t) {
                s.state = State::Done(outcome);
                wakes.extend(s.waker.take());
                self.pending -= 1;
            }
        }
        self.advance(wakes);
    }

    /// Moves `settled_below` past settled slots and drops slots nobody wants any more.
    fn advance(&mut self, wakes: &mut Vec<Waker>) {
        while let Some(s) = self.slot(self.settled_below) {
            if matches!(s.state, State::Pending) {
                break;
            }
            self.settled_below += 1;
        }
        if self.slots.is_empty() {
            self.settled_below = self.settled_below.max(self.last_tag + 1);
        }
        while let Some(front) = self.slots.front() {
            let done = !matches!(front.state, State::Pending);
            let collected = matches!(front.state, State::Taken) || !front.wanted;
            if done && collected {
                self.slots.pop_front();
                self.base += 1;
            } else {
                break;
            }
        }
        let settled_below = self.settled_below;
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters.get(i).is_some_and(|(t, _)| *t < settled_below) {
                let (_, w) = self.waiters.swap_remove(i);
                wakes.push(w);
            } else {
                i += 1;
            }
        }
    }

    /// The connection was lost (and is recovering): every unsettled message's future resolves
    /// to [`Error::ConnectionLost`], outcomes already received stay collectable, and counting
    /// starts again from tag 1 in a new epoch.
    pub(crate) fn lose(&mut self, cause: &Error, wakes: &mut Vec<Waker>) {
        let base = self.base;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let State::Done(c) = std::mem::replace(&mut s.state, State::Taken) {
                if s.wanted {
                    self.early.insert((self.epoch, base + i as u64), c);
                }
            }
            wakes.extend(s.waker.take());
        }
        wakes.extend(self.waiters.drain(..).map(|(_, w)| w));
        self.lost = Some(Error::ConnectionLost(Arc::new(cause.clone())));
        self.slots.clear();
        self.base = 0;
        self.settled_below = 0;
        self.last_tag = 0;
        self.pending = 0;
        self.returns.clear();
        self.nacks.clear();
        self.waits.clear();
        self.reported = 0;
        self.epoch += 1;
    }

    /// The current epoch (see [`lose`](Self::lose)).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    fn lost_error(&self) -> Error {
        self.lost
            .clone()
            .unwrap_or_else(|| Error::protocol("basic.publish", "confirm of an unknown epoch"))
    }

    /// The channel or connection closed: every waiter gets `error`.
    pub(crate) fn close(&mut self, error: Error) {
        if self.closed.is_none() {
            self.closed = Some(error);
        }
        for s in &mut self.slots {
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
        for (_, w) in self.waiters.drain(..) {
            w.wake();
        }
    }

    fn poll_tag(
        &mut self,
        epoch: u64,
        tag: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Confirmation>> {
        if epoch != self.epoch {
            return Poll::Ready(match self.early.remove(&(epoch, tag)) {
                Some(c) => Ok(c),
                None => Err(self.closed.clone().unwrap_or_else(|| self.lost_error())),
            });
        }
        let closed = self.closed.clone();
        let Some(slot) = self.slot(tag) else {
            // Already collected or never tracked: only reachable after a close.
            return Poll::Ready(Err(closed.unwrap_or_else(|| {
                Error::protocol("basic.publish", "confirm polled after completion")
            })));
        };
        match std::mem::replace(&mut slot.state, State::Taken) {
            State::Done(outcome) => {
                let mut wakes = Vec::new();
                self.advance(&mut wakes);
                wakes.into_iter().for_each(Waker::wake);
                Poll::Ready(Ok(outcome))
            }
            State::Pending => {
                slot.state = State::Pending;
                if let Some(e) = closed {
                    return Poll::Ready(Err(e));
                }
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Taken => Poll::Ready(Err(closed.unwrap_or_else(|| {
                Error::protocol("basic.publish", "confirm polled after completion")
            }))),
        }
    }

    fn forget(&mut self, epoch: u64, tag: u64) {
        if epoch != self.epoch {
            self.early.remove(&(epoch, tag));
            return;
        }
        if let Some(s) = self.slot(tag) {
            s.wanted = false;
            s.waker = None;
            let mut wakes = Vec::new();
            self.advance(&mut wakes);
            wakes.into_iter().for_each(Waker::wake);
        }
    }

    /// A `wait_for_confirms` starts: it will answer for the tags after `from` (what no earlier
    /// call that returned covered) up to `target` (the last tag published). Returns
    /// `(epoch, from, target)`; [`end_wait`](Self::end_wait) must follow.
    pub(crate) fn begin_wait(&mut self) -> (u64, u64, u64) {
        let from = self.reported.min(self.last_tag);
        self.waits.push(from);
        (self.epoch, from, self.last_tag)
    }

    /// A `wait_for_confirms` returned or was abandoned: nacks no other call can ask about are
    /// forgotten.
    pub(crate) fn end_wait(&mut self, epoch: u64, from: u64) {
        if epoch != self.epoch {
            return;
        }
        if let Some(i) = self.waits.iter().position(|&w| w == from) {
            self.waits.swap_remove(i);
        }
        let floor = self.waits.iter().copied().fold(self.reported, u64::min);
        self.nacks.retain(|&(_, hi)| hi > floor);
    }

    /// Waits until the tags up to `target` are settled; `Ok(true)` if none after `from` was
    /// nacked. Each caller gets its own answer: concurrent callers do not take it from each
    /// other.
    pub(crate) fn poll_all(
        &mut self,
        epoch: u64,
        from: u64,
        target: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Result<bool>> {
        if epoch != self.epoch {
            return Poll::Ready(Err(self.lost_error()));
        }
        if self.settled_below > target {
            self.reported = self.reported.max(target);
            let nacked = self.nacks.iter().any(|&(lo, hi)| lo <= target && hi > from);
            return Poll::Ready(Ok(!nacked));
        }
        if let Some(e) = &self.closed {
            return Poll::Ready(Err(e.clone()));
        }
        self.waiters.push((target, cx.waker().clone()));
        Poll::Pending
    }

    /// The highest tag handed out so far.
    pub(crate) fn last_tag(&self) -> u64 {
        self.last_tag
    }

    /// How many published messages the broker has not settled yet.
    pub(crate) fn unsettled(&self) -> u64 {
        self.pending
    }
}

/// The broker's verdict on one published message: a future of [`Confirmation`].
///
/// Dropping it is fine: the message stays published and the verdict is discarded. It does not
/// keep the channel open: if every handle to the channel is dropped first, the channel closes
/// and the future resolves to [`Error::ChannelClosed`].
///
/// [`Error::ChannelClosed`]: crate::Error::ChannelClosed
#[must_use = "a PublishConfirm does nothing unless awaited; drop it explicitly to ignore the verdict"]
#[derive(Debug)]
pub struct PublishConfirm {
    /// The channel, the tracker's epoch when the message was published, and its tag.
    inner: Option<(Arc<ChannelCore>, u64, u64)>,
}

impl PublishConfirm {
    pub(crate) fn tracked(channel: Arc<ChannelCore>, epoch: u64, tag: u64) -> Self {
        Self {
            inner: Some((channel, epoch, tag)),
        }
    }

    pub(crate) fn not_requested() -> Self {
        Self { inner: None }
    }

    /// The message's delivery tag in confirm mode.
    pub fn delivery_tag(&self) -> Option<u64> {
        self.inner.as_ref().map(|(_, _, tag)| *tag)
    }
}

impl Future for PublishConfirm {
    type Output = Result<Confirmation>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some((channel, epoch, tag)) = &self.inner else {
            return Poll::Ready(Ok(Confirmation::NotRequested));
        };
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let r = lock(&channel.confirms).poll_tag(*epoch, *tag, cx);
        if r.is_ready() {
            coop.made_progress();
            self.inner = None;
        }
        r
    }
}

impl Drop for PublishConfirm {
    fn drop(&mut self) {
        if let Some((channel, epoch, tag)) = self.inner.take() {
            lock(&channel.confirms).forget(epoch, tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amqp_wire::{BasicProperties, ReplyCode, ShortStr};
    use bytes::Bytes;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    fn cx_waker() -> Waker {
        Waker::from(Arc::new(Noop))
    }

    fn poll(t: &mut ConfirmTracker, tag: u64) -> Poll<Result<Confirmation>> {
        let w = cx_waker();
        let epoch = t.epoch();
        t.poll_tag(epoch, tag, &mut Context::from_waker(&w))
    }

    fn returned() -> ReturnedMessage {
        ReturnedMessage {
            reply_code: ReplyCode::NO_ROUTE,
            reply_text: ShortStr::from_static("NO_ROUTE"),
            exchange: ShortStr::default(),
            routing_key: ShortStr::from_static("nowhere"),
            properties: BasicProperties::default(),
            body: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn single_and_multiple_acks_settle_the_right_tags() {
        let mut t = ConfirmTracker::default();
        for tag in 1..=5 {
            t.push(tag, false);
        }
        t.settle(2, false, true, &mut Vec::new());
        assert!(matches!(
            poll(&mut t, 2),
            Poll::Ready(Ok(Confirmation::Ack))
        ));
        assert!(poll(&mut t, 1).is_pending());
        assert_eq!(t.unsettled(), 4);
        t.settle(4, true, false, &mut Vec::new());
        assert!(matches!(
            poll(&mut t, 1),
            Poll::Ready(Ok(Confirmation::Nack))
        ));
        assert!(matches!(
            poll(&mut t, 3),
            Poll::Ready(Ok(Confirmation::Nack))
        ));
        assert!(matches!(
            poll(&mut t, 4),
            Poll::Ready(Ok(Confirmation::Nack))
        ));
        assert!(poll(&mut t, 5).is_pending());
        assert_eq!(t.unsettled(), 1);
        t.settle(5, false, true, &mut Vec::new());
        assert!(matches!(
            poll(&mut t, 5),
            Poll::Ready(Ok(Confirmation::Ack))
        ));
        assert!(t.slots.is_empty(), "collected slots are freed");
    }

    #[test]
    fn forgotten_slots_are_freed_once_settled() {
        let mut t = ConfirmTracker::default();
        for tag in 1..=1000 {
            t.push(tag, false);
            t.forget(0, tag);
        }
        assert_eq!(t.slots.len(), 1000);
        t.settle(1000, true, true, &mut Vec::new());
        assert!(t.slots.is_empty());
        assert_eq!(t.unsettled(), 0);
    }

    #[test]
    fn wait_for_all_reports_nacks_once() {
        let mut t = ConfirmTracker::default();
        let w = cx_waker();
        let mut cx = Context::from_waker(&w);
        t.push(1, false);
        t.push(2, false);
        let (epoch, from, target) = t.begin_wait();
        assert_eq!((epoch, from, target), (0, 0, 2));
        assert!(t.poll_all(epoch, from, target, &mut cx).is_pending());
        t.settle(1, false, false, &mut Vec::new());
        assert!(t.poll_all(epoch, from, target, &mut cx).is_pending());
        t.settle(2, false, true, &mut Vec::new());
        assert!(matches!(
            t.poll_all(epoch, from, target, &mut cx),
            Poll::Ready(Ok(false))
        ));
        t.end_wait(epoch, from);
        // The next call covers only what was published since.
        let (epoch, from, target) = t.begin_wait();
        assert_eq!((from, target), (2, 2));
        assert!(matches!(
            t.poll_all(epoch, from, target, &mut cx),
            Poll::Ready(Ok(true))
        ));
        t.end_wait(epoch, from);
        assert!(t.nacks.is_empty());
    }

    #[test]
    fn concurrent_waits_each_get_their_own_answer() {
        let mut t = ConfirmTracker::default();
        let w = cx_waker();
        let mut cx = Context::from_waker(&w);
        t.push(1, false);
        let a = t.begin_wait();
        t.push(2, false);
        let b = t.begin_wait();
        let c = t.begin_wait();
        t.settle(1, false, false, &mut Vec::new());
        t.settle(2, false, true, &mut Vec::new());
        // All three started before any returned: each sees the nack of tag 1.
        for (epoch, from, target) in [a, b, c] {
            assert!(matches!(
                t.poll_all(epoch, from, target, &mut cx),
                Poll::Ready(Ok(false))
            ));
        }
        t.end_wait(b.0, b.1);
        // `a` and `c` still answer false after `b` finished.
        assert!(matches!(
            t.poll_all(a.0, a.1, a.2, &mut cx),
            Poll::Ready(Ok(false))
        ));
        assert!(matches!(
            t.poll_all(c.0, c.1, c.2, &mut cx),
            Poll::Ready(Ok(false))
        ));
        t.end_wait(a.0, a.1);
        t.end_wait(c.0, c.1);
        assert!(t.nacks.is_empty());
        t.push(3, false);
        t.settle(3, false, true, &mut Vec::new());
        let d = t.begin_wait();
        assert_eq!((d.1, d.2), (2, 3));
        assert!(matches!(
            t.poll_all(d.0, d.1, d.2, &mut cx),
            Poll::Ready(Ok(true))
        ));
    }

    #[test]
    fn return_attaches_to_the_mandatory_message_the_ack_settles() {
        let mut t = ConfirmTracker::default();
        t.push(1, false);
        t.push(2, true);
        t.push(3, false);
        t.returned(returned());
        t.settle(3, true, true, &mut Vec::new());
        assert!(matches!(
            poll(&mut t, 1),
            Poll::Ready(Ok(Confirmation::Ack))
        ));
        match poll(&mut t, 2) {
            Poll::Ready(Ok(Confirmation::Returned(m))) => {
                assert_eq!(m.routing_key, "nowhere")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            poll(&mut t, 3),
            Poll::Ready(Ok(Confirmation::Ack))
        ));
    }

    #[test]
    fn close_fails_pending_confirms() {
        let mut t = ConfirmTracker::default();
        t.push(1, false);
        t.close(Error::MissedHeartbeats(std::time::Duration::from_secs(1)));
        assert!(matches!(
            poll(&mut t, 1),
            Poll::Ready(Err(Error::MissedHeartbeats(_)))
        ));
    }

    #[test]
    fn a_loss_resolves_pending_confirms_as_connection_lost_and_keeps_received_ones() {
        let mut t = ConfirmTracker::default();
        let w = cx_waker();
        let mut cx = Context::from_waker(&w);
        t.push(1, false);
        t.push(2, false);
        t.push(3, false);
        t.settle(1, false, true, &mut Vec::new());
        t.forget(0, 3);
        let cause = Error::MissedHeartbeats(std::time::Duration::from_secs(1));
        t.lose(&cause, &mut Vec::new());
        assert_eq!(t.unsettled(), 0);
        assert!(matches!(
            t.poll_all(0, 0, 2, &mut cx),
            Poll::Ready(Err(Error::ConnectionLost(_)))
        ));
        // Acked before the loss: still an ack.
        assert!(matches!(
            t.poll_tag(0, 1, &mut cx),
            Poll::Ready(Ok(Confirmation::Ack))
        ));
        // Unsettled: lost, and the cause is kept.
        match t.poll_tag(0, 2, &mut cx) {
            Poll::Ready(Err(Error::ConnectionLost(c))) => {
                assert!(matches!(*c, Error::MissedHeartbeats(_)))
            }
            other => panic!("{other:?}"),
        }
        assert!(t.early.is_empty());
        // The new epoch counts from 1 again, and its tag 2 is not the old tag 2.
        t.push(1, false);
        t.push(2, false);
        t.settle(2, true, true, &mut Vec::new());
        assert!(matches!(
            t.poll_tag(1, 2, &mut cx),
            Poll::Ready(Ok(Confirmation::Ack))
        ));
        assert!(matches!(
            t.poll_tag(0, 2, &mut cx),
            Poll::Ready(Err(Error::ConnectionLost(_)))
        ));
    }
}
