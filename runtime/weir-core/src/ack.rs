//! Delivery acknowledgements: how a source learns that its records are safe, so that it moves a
//! checkpoint only past records the sink has.
//!
//! A source that checkpoints attaches an [`Ack`] to the records it emits (one `Ack` may be shared
//! by a run of records; a record made from many inputs carries [`Ack::merge`] of theirs). Every copy of a record holds its ack. A record dropped on purpose (by a
//! filter, say) lets go of it at once; a sink, or the error output, lets go only after the
//! record's object is durably written. When the last holder lets go, the ack resolves and the
//! source receives its token on the channel it gave. A holder that gives up on a record (a sink
//! whose writes keep failing) marks the ack failed first, and it resolves as not delivered.
//!
//! A pipeline stage that fails sets the pipeline's [`Poison`] before it lets go of anything: from
//! then on every ack of that pipeline resolves as not delivered, however its records were let go.
//! An ack let go by a panicking thread poisons the pipeline itself.
//!
//! Invariant: an ack resolves as delivered only after every copy of every record that carried it
//! was durably written (to the sink or the error output) or deliberately dropped, in a pipeline
//! that had not failed.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// What the source is told when an ack resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub token: u64,
    pub delivered: bool,
}

/// Set when a stage of the pipeline fails; shared by all of the pipeline's acks.
#[derive(Debug, Clone, Default)]
pub struct Poison(tokio_util::sync::CancellationToken);

impl Poison {
    pub fn set(&self) {
        self.0.cancel();
    }

    pub fn is_set(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once the pipeline is poisoned.
    pub async fn wait(&self) {
        self.0.cancelled().await
    }

    /// Sends `value` downstream; if the next stage is gone, poisons the pipeline before the
    /// value (and the acks of its records) is dropped, and returns `false`.
    pub async fn send<T>(&self, tx: &mpsc::Sender<T>, value: T) -> bool {
        match tx.send(value).await {
            Ok(()) => true,
            Err(unsent) => {
                self.set();
                drop(unsent);
                false
            }
        }
    }
}

/// Makes acks for one source: they report on `tx`, and resolve as not delivered once the
/// pipeline is poisoned.
#[derive(Debug, Clone)]
pub struct Acker {
    tx: mpsc::UnboundedSender<Resolved>,
    poison: Poison,
}

impl Acker {
    pub fn new(tx: mpsc::UnboundedSender<Resolved>, poison: Poison) -> Acker {
        Acker { tx, poison }
    }

    pub fn ack(&self, token: u64) -> Ack {
        Ack(Some(Arc::new(Node::One(Inner {
            token,
            failed: AtomicBool::new(false),
            tx: self.tx.clone(),
            poison: self.poison.clone(),
        }))))
    }
}

struct Inner {
    token: u64,
    failed: AtomicBool,
    tx: mpsc::UnboundedSender<Resolved>,
    poison: Poison,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped while a thread unwinds from a panic: the records went nowhere, and the
        // pipeline is as good as failed.
        if std::thread::panicking() {
            self.poison.set();
        }
        let _ = self.tx.send(Resolved {
            token: self.token,
            delivered: !self.failed.load(Ordering::Acquire) && !self.poison.is_set(),
        });
    }
}

/// What an ack stands for: one source token, or the acks of every input a record was made
/// from (an aggregate row holds each input it summarises until the row is delivered).
enum Node {
    One(Inner),
    Many(Vec<Ack>),
}

/// A handle on a delivery acknowledgement; `Ack::none()` for records nobody waits on.
#[derive(Clone, Default)]
pub struct Ack(Option<Arc<Node>>);

impl Ack {
    pub fn none() -> Ack {
        Ack(None)
    }

    /// One ack for a record made from many: it holds every one of `acks` until it is let go,
    /// and failing it fails them all. Consecutive copies of one ack are kept once.
    pub fn merge(acks: impl IntoIterator<Item = Ack>) -> Ack {
        let mut held: Vec<Ack> = Vec::new();
        for ack in acks {
            if ack.is_none() || held.last().is_some_and(|last| last.same(&ack)) {
                continue;
            }
            held.push(ack);
        }
        match held.len() {
            0 => Ack::none(),
            1 => held.pop().expect("one"),
            _ => Ack(Some(Arc::new(Node::Many(held)))),
        }
    }

    /// Marks the records that carry this ack as not delivered.
    pub fn fail(&self) {
        match self.0.as_deref() {
            Some(Node::One(inner)) => inner.failed.store(true, Ordering::Release),
            Some(Node::Many(acks)) => acks.iter().for_each(Ack::fail),
            None => {}
        }
    }

    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// Whether two handles are the same ack (so a buffer keeps one of them, not both).
    pub fn same(&self, other: &Ack) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_deref() {
            Some(Node::One(inner)) => write!(f, "Ack({})", inner.token),
            Some(Node::Many(acks)) => f.debug_tuple("Ack").field(acks).finish(),
            None => f.write_str("Ack(none)"),
        }
    }
}

/// Acks are bookkeeping, not data: two records with the same data are equal whatever they carry.
impl PartialEq for Ack {
    fn eq(&self, _: &Ack) -> bool {
        true
    }
}

/// The acks of the records in a buffer, kept until the buffer is written. Consecutive records
/// usually share an ack, so only changes are stored.
#[derive(Debug, Default)]
pub struct Held(Vec<Ack>);

impl Held {
    pub fn hold(&mut self, ack: &Ack) {
        if ack.is_none() || self.0.last().is_some_and(|last| last.same(ack)) {
            return;
        }
        self.0.push(ack.clone());
    }

    /// Whether no ack is held (the records came from a source that keeps no checkpoint).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lets go of every ack: they resolve (as delivered, unless failed elsewhere).
    pub fn release(&mut self) {
        self.0.clear();
    }

    /// Marks every held ack failed, then lets go.
    pub fn fail(&mut self) {
        self.0.iter().for_each(Ack::fail);
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_when_the_last_copy_lets_go() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ack = Acker::new(tx, Poison::default()).ack(7);
        let copy = ack.clone();
        let mut held = Held::default();
        held.hold(&ack);
        held.hold(&copy);
        drop(ack);
        drop(copy);
        assert!(rx.try_recv().is_err(), "the buffer still holds it");
        held.release();
        assert_eq!(
            rx.try_recv().unwrap(),
            Resolved {
                token: 7,
                delivered: true
            }
        );
    }

    #[test]
    fn a_merged_ack_holds_every_input_until_it_is_let_go() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let acker = Acker::new(tx, Poison::default());
        let (a, b) = (acker.ack(1), acker.ack(2));
        let row = Ack::merge([a.clone(), a, Ack::none(), b]);
        assert_eq!(format!("{row:?}"), "Ack([Ack(1), Ack(2)])");
        assert!(rx.try_recv().is_err(), "the row holds both inputs");
        let copy = row.clone();
        drop(row);
        assert!(rx.try_recv().is_err(), "a copy of the row still holds them");
        drop(copy);
        let mut resolved = [rx.try_recv().unwrap(), rx.try_recv().unwrap()];
        resolved.sort_by_key(|r| r.token);
        assert!(resolved.iter().all(|r| r.delivered), "{resolved:?}");
        // Failing the row fails every input it summarises.
        let failed = Ack::merge([acker.ack(3), acker.ack(4)]);
        failed.fail();
        drop(failed);
        assert!(!rx.try_recv().unwrap().delivered);
        assert!(!rx.try_recv().unwrap().delivered);
        assert!(Ack::merge([Ack::none()]).is_none());
    }

    #[test]
    fn a_failed_holder_makes_it_undelivered() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ack = Acker::new(tx, Poison::default()).ack(1);
        let mut held = Held::default();
        held.hold(&ack);
        drop(ack);
        held.fail();
        assert!(!rx.try_recv().unwrap().delivered);
    }

    #[test]
    fn an_ack_dropped_by_a_panicking_thread_is_not_delivered_and_poisons() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let poison = Poison::default();
        let ack = Acker::new(tx, poison.clone()).ack(3);
        let crashed = std::thread::spawn(move || {
            let _held = ack;
            panic!("a processor crashed");
        })
        .join();
        assert!(crashed.is_err());
        assert!(!rx.try_recv().unwrap().delivered);
        assert!(poison.is_set());
    }

    #[test]
    fn a_poisoned_pipeline_delivers_nothing_more() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let poison = Poison::default();
        let acker = Acker::new(tx, poison.clone());
        drop(acker.ack(1));
        assert!(rx.try_recv().unwrap().delivered);
        let pending = acker.ack(2);
        poison.set();
        drop(pending);
        assert!(!rx.try_recv().unwrap().delivered);
    }
}
