//! Run starts recorded in batches. The runs of a prespawned group are released together and
//! start within microseconds of each other: one transaction records all of them instead of
//! one each (on PostgreSQL, at 1,000 runs a second, those were a thousand commits a second).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{RunStart, Store};

/// `Ok(false)`: the run was no longer this node's to start (see `Store::mark_runs_started`).
type Ack = oneshot::Sender<Result<bool, String>>;

/// Hands run starts to a task that writes whatever has queued up in one transaction.
pub(super) struct StartRecorder {
    queue: mpsc::UnboundedSender<(RunStart, Ack)>,
}

/// Most starts one transaction records.
const MAX_BATCH: usize = 2000;

impl StartRecorder {
    pub(super) fn spawn(store: Store, node_id: Arc<str>) -> Self {
        let (queue, mut pending) = mpsc::unbounded_channel::<(RunStart, Ack)>();
        tokio::spawn(async move {
            // No waiting to fill a batch: what queued while the last one was written goes next.
            while let Some(first) = pending.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match pending.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let starts: Vec<RunStart> = batch.iter().map(|(start, _)| *start).collect();
                let written = store.mark_runs_started(&node_id, &starts).await.map_err(|e| e.to_string());
                for (start, ack) in batch {
                    let _ = ack
                        .send(written.as_ref().map(|ids| ids.contains(&start.run_id)).map_err(Clone::clone));
                }
            }
        });
        StartRecorder { queue }
    }

    /// Records the start; returns once it is written (a run's end is recorded only after),
    /// with whether the run was still this node's to start.
    pub(super) async fn record(&self, start: RunStart) -> Result<bool, String> {
        let (ack, written) = oneshot::channel();
        self.queue.send((start, ack)).map_err(|_| "the start recorder stopped".to_string())?;
        written.await.map_err(|_| "the start recorder stopped".to_string())?
    }
}
