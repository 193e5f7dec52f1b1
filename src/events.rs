//! Domain events: what happened to jobs and runs, announced by the runner, the scheduler and
//! the service, and turned into outbound webhook deliveries by `crate::webhooks`.
//!
//! Emitting is a non-blocking send on an unbounded channel: announcing an event never waits
//! for the database or a receiver, so it cannot delay a run or a request.

use tokio::sync::mpsc;

use crate::domain::{EpochMs, EventKind, Job, Run, now_ms};

/// One event with the job (and run) as they were when it happened.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub at: EpochMs,
    pub job: Job,
    pub run: Option<Run>,
}

impl Event {
    pub fn job(kind: EventKind, job: &Job) -> Self {
        Event { kind, at: now_ms(), job: job.clone(), run: None }
    }

    pub fn run(kind: EventKind, job: &Job, run: &Run) -> Self {
        Event { kind, at: now_ms(), job: job.clone(), run: Some(run.clone()) }
    }
}

/// Where events go. Cheap to clone; an inert sender (no webhooks subsystem, as in
/// `cronstack user add`) drops them.
#[derive(Clone, Debug, Default)]
pub struct EventSender(Option<mpsc::UnboundedSender<Event>>);

pub type EventReceiver = mpsc::UnboundedReceiver<Event>;

/// A connected sender and receiver.
pub fn channel() -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (EventSender(Some(tx)), rx)
}

impl EventSender {
    pub fn inert() -> Self {
        EventSender(None)
    }

    pub fn emit(&self, event: Event) {
        if let Some(tx) = &self.0 {
            // Closed only after shutdown, when nothing is announced any more.
            let _ = tx.send(event);
        }
    }
}
