//! Run records are written in batches: every run finishing while a write is
//! under way joins the next one, so a busy node commits many runs per
//! transaction (group commit) and a quiet one commits each at once. A
//! caller's `record` returns after its run is durable.

use std::sync::Arc;

use citadel_store::{Run, Store};
use tokio::sync::{mpsc, oneshot};

type Ack = oneshot::Sender<Result<(), String>>;

/// Runs written per transaction at most.
const MAX_BATCH: usize = 512;

pub(crate) struct Recorder {
    tx: mpsc::UnboundedSender<(Run, Ack)>,
}

impl Recorder {
    pub(crate) fn start(store: Arc<dyn Store>) -> Recorder {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Run, Ack)>();
        tokio::spawn(async move {
            let mut runs = Vec::with_capacity(MAX_BATCH);
            let mut acks = Vec::with_capacity(MAX_BATCH);
            while let Some((run, ack)) = rx.recv().await {
                runs.push(run);
                acks.push(ack);
                while runs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok((run, ack)) => {
                            runs.push(run);
                            acks.push(ack);
                        }
                        Err(_) => break,
                    }
                }
                let result = store.put_runs(&runs).await.map_err(|e| e.to_string());
                for ack in acks.drain(..) {
                    let _ = ack.send(result.clone());
                }
                runs.clear();
            }
        });
        Recorder { tx }
    }

    /// Returns once the run is committed, or the database's error.
    pub(crate) async fn record(&self, run: Run) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        let gone = || "the run recorder stopped".to_owned();
        self.tx.send((run, ack)).map_err(|_| gone())?;
        done.await.map_err(|_| gone())?
    }
}
