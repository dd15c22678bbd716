//! Group commit. Run records, enqueued jobs, finished jobs, webhook
//! delivery attempts and execution audit entries are written in batches:
//! everything submitted while a write is under way joins the next one, so a
//! busy node commits many per transaction and a quiet one commits each at
//! once. A caller's submission returns after its item is durable.

use std::future::Future;
use std::sync::Arc;

use citadel_domain::DeliveryState;
use citadel_store::{
    FinishedDelivery, FinishedJob, Job, NewAuditEntry, NewJob, Published, Run, Store, StoreError,
    StoreFuture, WebhookAttempt, now_ms,
};
use tokio::sync::{mpsc, oneshot};

/// Items written per transaction at most.
const MAX_BATCH: usize = 512;

/// Times a busy writer yields to ready tasks before writing, while each
/// yield brings more items.
const LINGER_YIELDS: usize = 4;

/// How long a finished run (or job) waits for an unavailable database to
/// come back; past it a job's lease expires and another node re-runs it.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// What the writer does with an item's output once its batch is written:
/// wake a waiting caller, or finish up for one that could not wait (a run
/// whose caller went away is recorded from a `Drop`).
type Ack<O> = Box<dyn FnOnce(O) + Send>;

/// Submits items to one writer task, which writes them in batches.
pub(crate) struct Batcher<I, O> {
    tx: mpsc::UnboundedSender<(I, Ack<O>)>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// `write` gets a batch and answers one output per item, in order.
    fn start<F, Fut>(write: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<O>> + Send,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<(I, Ack<O>)>();
        tokio::spawn(async move {
            let mut items = Vec::with_capacity(MAX_BATCH);
            let mut acks = Vec::with_capacity(MAX_BATCH);
            let mut busy = false;
            while let Some((item, ack)) = rx.recv().await {
                items.push(item);
                acks.push(ack);
                let mut drain = |items: &mut Vec<I>, acks: &mut Vec<Ack<O>>| {
                    let before = items.len();
                    while items.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok((item, ack)) => {
                                items.push(item);
                                acks.push(ack);
                            }
                            Err(_) => break,
                        }
                    }
                    items.len() > before
                };
                drain(&mut items, &mut acks);
                // Under load (the last batch had company), let the tasks
                // that are ready run first: those about to submit join
                // this batch. A commit costs about the same for one item
                // as for dozens, and yielding adds no wait when nothing
                // else is ready, so a quiet node still commits at once.
                if busy {
                    for _ in 0..LINGER_YIELDS {
                        tokio::task::yield_now().await;
                        if !drain(&mut items, &mut acks) {
                            break;
                        }
                    }
                }
                busy = items.len() > 1;
                let outputs = write(std::mem::take(&mut items)).await;
                for (ack, out) in acks.drain(..).zip(outputs) {
                    ack(out);
                }
            }
        });
        Batcher { tx }
    }

    /// The item's output once its batch is written; `None` if the writer
    /// is gone.
    async fn submit(&self, item: I) -> Option<O> {
        let (ack, done) = oneshot::channel();
        let ack: Ack<O> = Box::new(move |out| {
            // The caller may have stopped waiting; the item is written all
            // the same.
            let _ = ack.send(out);
        });
        self.tx.send((item, ack)).ok()?;
        done.await.ok()
    }

    /// Hands the item to the writer without waiting: `then` gets its output
    /// once its batch is written. Items are written in submission order, so
    /// it is written no later than anything submitted after it. `false`
    /// (and `then` is not called) if the writer is gone.
    fn submit_detached(&self, item: I, then: impl FnOnce(O) + Send + 'static) -> bool {
        self.tx.send((item, Box::new(then))).is_ok()
    }
}

/// Writes a batch with one call of `write` (one output per item); when
/// that fails, each item with a call of its own, so that one bad item fails
/// only its own caller.
async fn whole_or_each<'a, I, O>(
    items: &'a [I],
    write: impl Fn(&'a [I]) -> StoreFuture<'a, Vec<O>>,
) -> Vec<Result<O, StoreError>> {
    match write(items).await {
        Ok(out) => out.into_iter().map(Ok).collect(),
        Err(_) if items.len() > 1 => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(write(std::slice::from_ref(item)).await.and_then(|mut one| {
                    one.pop()
                        .ok_or_else(|| StoreError::NotFound("the written item".to_owned()))
                }));
            }
            out
        }
        Err(e) => vec![Err(e)],
    }
}

/// Records finished runs.
pub(crate) struct Recorder(Batcher<Run, Result<(), String>>);

impl Recorder {
    pub(crate) fn start(store: Arc<dyn Store>) -> Recorder {
        Recorder(Batcher::start(move |runs: Vec<Run>| {
            let store = Arc::clone(&store);
            async move {
                let result = crate::patiently(PATIENCE, || store.put_runs(&runs))
                    .await
                    .map_err(|e| e.to_string());
                vec![result; runs.len()]
            }
        }))
    }

    /// Returns once the run is committed, or the database's error.
    pub(crate) async fn record(&self, run: Run) -> Result<(), String> {
        self.0
            .submit(run)
            .await
            .unwrap_or_else(|| Err("the run recorder stopped".to_owned()))
    }

    /// Hands the run to the writer without waiting (from a `Drop`, which
    /// cannot await); `then` gets the outcome once its batch is written.
    pub(crate) fn record_detached(
        &self,
        run: Run,
        then: impl FnOnce(Result<(), String>) + Send + 'static,
    ) -> bool {
        self.0.submit_detached(run, then)
    }
}

/// Enqueues jobs.
pub(crate) struct Enqueuer(Batcher<NewJob, Result<(Job, bool), StoreError>>);

impl Enqueuer {
    pub(crate) fn start(store: Arc<dyn Store>) -> Enqueuer {
        Enqueuer(Batcher::start(move |jobs: Vec<NewJob>| {
            let store = Arc::clone(&store);
            async move { whole_or_each(&jobs, |some| store.enqueue_many(some)).await }
        }))
    }

    /// The job (and whether it is new) once it is committed.
    pub(crate) async fn enqueue(&self, job: NewJob) -> Result<(Job, bool), StoreError> {
        self.0
            .submit(job)
            .await
            .unwrap_or_else(|| Err(StoreError::NotFound("the job writer stopped".to_owned())))
    }
}

/// Ends this node's running jobs.
pub(crate) struct Finisher(Batcher<FinishedJob, Result<bool, String>>);

impl Finisher {
    pub(crate) fn start(store: Arc<dyn Store>, node: String) -> Finisher {
        Finisher(Batcher::start(move |jobs: Vec<FinishedJob>| {
            let (store, node) = (Arc::clone(&store), node.clone());
            async move {
                let finish = || store.finish_jobs(&node, &jobs, now_ms());
                match crate::patiently(PATIENCE, finish).await {
                    Ok(held) => held.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e.to_string()); jobs.len()],
                }
            }
        }))
    }

    /// Whether this node still held the job, once its end is committed.
    pub(crate) async fn finish(&self, job: FinishedJob) -> Result<bool, String> {
        self.0
            .submit(job)
            .await
            .unwrap_or_else(|| Err("the job finisher stopped".to_owned()))
    }
}

/// Records webhook delivery attempts.
pub(crate) struct AttemptRecorder(Batcher<(WebhookAttempt, DeliveryState), Result<(), String>>);

impl AttemptRecorder {
    pub(crate) fn start(store: Arc<dyn Store>) -> AttemptRecorder {
        AttemptRecorder(Batcher::start(
            move |attempts: Vec<(WebhookAttempt, DeliveryState)>| {
                let store = Arc::clone(&store);
                async move {
                    let result = crate::patiently(PATIENCE, || store.record_attempts(&attempts))
                        .await
                        .map_err(|e| e.to_string());
                    vec![result; attempts.len()]
                }
            },
        ))
    }

    /// Returns once the attempt is committed, or the database's error.
    pub(crate) async fn record(
        &self,
        attempt: WebhookAttempt,
        state: DeliveryState,
    ) -> Result<(), String> {
        self.0
            .submit((attempt, state))
            .await
            .unwrap_or_else(|| Err("the attempt recorder stopped".to_owned()))
    }
}

/// Writes published events with what they set going: publishes made at
/// once share a transaction. Each caller gets its publish back.
pub(crate) struct PublishWriter(Batcher<Published, Result<Published, StoreError>>);

impl PublishWriter {
    pub(crate) fn start(store: Arc<dyn Store>) -> PublishWriter {
        PublishWriter(Batcher::start(move |all: Vec<Published>| {
            let store = Arc::clone(&store);
            async move {
                let written = whole_or_each(&all, |some| {
                    let store = Arc::clone(&store);
                    Box::pin(async move {
                        store.put_published(some).await?;
                        Ok(vec![(); some.len()])
                    })
                })
                .await;
                written
                    .into_iter()
                    .zip(all)
                    .map(|(w, p)| w.map(|()| p))
                    .collect()
            }
        }))
    }

    /// The publish, once it and everything it set going is committed.
    pub(crate) async fn write(&self, published: Published) -> Result<Published, StoreError> {
        self.0
            .submit(published)
            .await
            .unwrap_or_else(|| Err(StoreError::NotFound("the event writer stopped".to_owned())))
    }
}

/// Ends deliveries: a finished delivery's last attempt, its job's end and
/// its audit entry go in one transaction, so a busy node commits once per
/// batch where three writers would take turns on SQLite's write lock.
pub(crate) struct DeliveryFinisher(Batcher<FinishedDelivery, Result<bool, String>>);

impl DeliveryFinisher {
    pub(crate) fn start(store: Arc<dyn Store>, node: String) -> DeliveryFinisher {
        DeliveryFinisher(Batcher::start(move |done: Vec<FinishedDelivery>| {
            let (store, node) = (Arc::clone(&store), node.clone());
            async move {
                let finish = |some| -> StoreFuture<'_, Vec<bool>> {
                    let (store, node) = (Arc::clone(&store), node.clone());
                    Box::pin(async move {
                        let write = || store.finish_deliveries(&node, some, now_ms());
                        crate::patiently(PATIENCE, write).await
                    })
                };
                whole_or_each(&done, finish)
                    .await
                    .into_iter()
                    .map(|r| r.map_err(|e| e.to_string()))
                    .collect()
            }
        }))
    }

    /// Whether this node still held the delivery's job, once everything
    /// is committed.
    pub(crate) async fn finish(&self, done: FinishedDelivery) -> Result<bool, String> {
        self.0
            .submit(done)
            .await
            .unwrap_or_else(|| Err("the delivery finisher stopped".to_owned()))
    }
}

/// Appends audit entries of executions (plugin runs, webhook deliveries),
/// which nothing waits for.
pub(crate) struct AuditWriter(Batcher<NewAuditEntry, Result<(), String>>);

impl AuditWriter {
    pub(crate) fn start(store: Arc<dyn Store>) -> AuditWriter {
        AuditWriter(Batcher::start(move |entries: Vec<NewAuditEntry>| {
            let store = Arc::clone(&store);
            async move {
                let result = crate::patiently(PATIENCE, || store.append_audits(&entries))
                    .await
                    .map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, entries = entries.len(), "cannot append audit entries");
                }
                vec![result; entries.len()]
            }
        }))
    }

    /// Hands the entry to the writer; it is appended with the next batch.
    pub(crate) fn append(&self, entry: NewAuditEntry) {
        if !self.0.submit_detached(entry, |_| {}) {
            tracing::error!("the audit writer stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch that fails whole is written item by item: the bad item fails
    /// alone, the others get their own outputs, in order.
    #[tokio::test]
    async fn a_failed_batch_is_written_item_by_item() {
        let calls = std::sync::Mutex::new(Vec::new());
        let write = |some: &[i64]| -> StoreFuture<'_, Vec<i64>> {
            calls.lock().unwrap().push(some.len());
            let bad = some.contains(&2);
            let out: Vec<i64> = some.iter().map(|n| n * 10).collect();
            Box::pin(async move {
                if bad {
                    Err(StoreError::Conflict("item 2".into()))
                } else {
                    Ok(out)
                }
            })
        };
        let out = whole_or_each(&[1, 2, 3], write).await;
        let shown: Vec<Result<i64, String>> = out
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                Ok(10),
                Err(StoreError::Conflict("item 2".into()).to_string()),
                Ok(30)
            ]
        );
        assert_eq!(*calls.lock().unwrap(), [3, 1, 1, 1]);
        // A batch that is written whole is one call.
        calls.lock().unwrap().clear();
        let out = whole_or_each(&[1, 3], write).await;
        assert_eq!(
            out.into_iter().map(|r| r.ok()).collect::<Vec<_>>(),
            [Some(10), Some(30)]
        );
        assert_eq!(*calls.lock().unwrap(), [2]);
    }

    /// A busy writer lets ready tasks submit before it writes, so their
    /// items join its batch; a quiet one writes a lone item at once.
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_writer_takes_the_items_of_ready_tasks_into_its_batch() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let batcher = Arc::new(Batcher::start(move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.clone());
            async move { items }
        }));
        // Alone: written by itself.
        assert_eq!(batcher.submit(1).await, Some(1));
        // Two at once: one batch, and the writer is busy from here.
        let (a, b) = tokio::join!(batcher.submit(2), batcher.submit(3));
        assert_eq!((a, b), (Some(2), Some(3)));
        // Item 4 wakes the writer; the task that submits 5 is ready then,
        // and its item joins the same batch.
        let late = Arc::clone(&batcher);
        let (four, five) = tokio::join!(batcher.submit(4), async move {
            tokio::task::yield_now().await;
            late.submit(5).await
        });
        assert_eq!((four, five), (Some(4), Some(5)));
        assert_eq!(*sizes.lock().unwrap(), [vec![1], vec![2, 3], vec![4, 5]]);
    }
}
