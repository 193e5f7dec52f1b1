//! Run starts and ends recorded in batches. The runs of a prespawned group are released
//! together and start within microseconds of each other, and at hundreds of runs a second
//! their ends come as close: one transaction records whatever has queued up instead of one
//! each (on PostgreSQL, at 1,000 runs a second, those were a thousand commits a second each
//! way). No item waits to fill a batch: what queued while the last batch was written goes
//! next.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::domain::Run;
use crate::store::{RunEnd, RunStart, Store};

type Ack<A> = oneshot::Sender<Result<A, String>>;

/// Hands items to a task that writes them a batch at a time; each caller gets its item's
/// answer once the batch is written.
pub(super) struct BatchWriter<T, A> {
    queue: mpsc::UnboundedSender<(T, Ack<A>)>,
}

impl<T: Send + 'static, A: Clone + Send + 'static> BatchWriter<T, A> {
    /// `write` records up to `max` items and answers each, in their order.
    fn spawn<F, Fut>(max: usize, write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<A>, String>> + Send,
    {
        let (queue, mut pending) = mpsc::unbounded_channel::<(T, Ack<A>)>();
        tokio::spawn(async move {
            while let Some(first) = pending.recv().await {
                let mut batch = vec![first];
                while batch.len() < max {
                    match pending.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (items, acks): (Vec<T>, Vec<Ack<A>>) = batch.into_iter().unzip();
                match write(items).await {
                    Ok(answers) => {
                        for (ack, answer) in acks.into_iter().zip(answers) {
                            let _ = ack.send(Ok(answer));
                        }
                    }
                    Err(e) => {
                        for ack in acks {
                            let _ = ack.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        BatchWriter { queue }
    }

    /// Records `item`; returns once its batch is written, with its answer.
    pub(super) async fn record(&self, item: T) -> Result<A, String> {
        let (ack, written) = oneshot::channel();
        self.queue.send((item, ack)).map_err(|_| "the batch writer stopped".to_string())?;
        written.await.map_err(|_| "the batch writer stopped".to_string())?
    }
}

/// Most starts one transaction records.
const MAX_STARTS: usize = 2000;
/// Most ends one transaction records: it holds their jobs' rows until it commits, and a claim
/// of one of them waits meanwhile.
const MAX_ENDS: usize = 200;

/// Run starts: the answer is whether the run was still this node's to start (see
/// `Store::mark_runs_started`); a run's end is recorded only after its start.
pub(super) type StartRecorder = BatchWriter<RunStart, bool>;

pub(super) fn start_recorder(store: Store, node_id: Arc<str>) -> StartRecorder {
    BatchWriter::spawn(MAX_STARTS, move |starts: Vec<RunStart>| {
        let (store, node_id) = (store.clone(), node_id.clone());
        async move {
            let written = store.mark_runs_started(&node_id, &starts).await.map_err(|e| e.to_string())?;
            Ok(starts.iter().map(|s| written.contains(&s.run_id)).collect())
        }
    })
}

/// Run ends: the answer is `Store::finish_run`'s (`None`: not this node's run any more; else
/// the chained runs the end set off).
pub(super) type EndRecorder = BatchWriter<RunEnd, Option<Vec<Run>>>;

pub(super) fn end_recorder(store: Store, node_id: Arc<str>) -> EndRecorder {
    BatchWriter::spawn(MAX_ENDS, move |ends: Vec<RunEnd>| {
        let (store, node_id) = (store.clone(), node_id.clone());
        async move { store.finish_runs(&node_id, &ends).await.map_err(|e| e.to_string()) }
    })
}
