//! Coalescing of concurrent calls into batched database statements.
//!
//! Each database round trip costs both sides a socket write, a wake-up and a
//! context switch, and PostgreSQL a statement's fixed overhead; under load
//! these, not the rows, are most of a lookup's or a create's cost (see the
//! README's performance section). A `Coalescer` runs at most `in_flight`
//! statements of one kind at a time; calls that arrive while they run wait
//! and go together in the next statement. A call that finds a slot free runs
//! its statement itself, in its own task, at once: coalescing adds no waiting
//! and no hand-off to an idle server, and batches only what load queues
//! anyway (the way PostgreSQL's group commit does).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::error::{Error, Result};

struct Job<I, O> {
    input: I,
    reply: oneshot::Sender<Result<O>>,
    /// The caller's span: the batch's statement is traced as a child of
    /// the first caller's, and follows from the others'.
    span: tracing::Span,
}

type Statement<O> = Pin<Box<dyn Future<Output = Result<Vec<O>>> + Send>>;
type Run<I, O> = Arc<dyn Fn(Vec<I>) -> Statement<O> + Send + Sync>;

/// Runs calls of one kind in batches; cheap to clone.
pub struct Coalescer<I, O> {
    queue: mpsc::UnboundedSender<Job<I, O>>,
    slots: Arc<Semaphore>,
    run: Run<I, O>,
}

impl<I, O> Clone for Coalescer<I, O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            slots: self.slots.clone(),
            run: self.run.clone(),
        }
    }
}

impl<I, O> std::fmt::Debug for Coalescer<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").finish_non_exhaustive()
    }
}

impl<I: Send + 'static, O: Send + 'static> Coalescer<I, O> {
    /// `run` gets up to `max_batch` inputs and answers with one output per
    /// input, in their order. The queue needs no bound of its own: every
    /// call in it holds one of the server's concurrent-call slots. The
    /// dispatcher ends when the last clone is dropped.
    pub fn new<F, Fut>(name: &'static str, max_batch: usize, in_flight: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>>> + Send + 'static,
    {
        let run: Run<I, O> = Arc::new(move |inputs| Box::pin(run(inputs)));
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job<I, O>>();
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        let max_batch = max_batch.max(1);
        let this = Self {
            queue,
            slots: slots.clone(),
            run: run.clone(),
        };
        tokio::spawn(async move {
            while let Some(first) = jobs.recv().await {
                // Calls that arrive while every slot is taken join this batch.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let calls = batch.len();
                let span = tracing::info_span!(parent: &batch[0].span, "coalesced", name, calls);
                for job in &batch[1..] {
                    span.follows_from(&job.span);
                }
                let (inputs, replies): (Vec<I>, Vec<_>) =
                    batch.into_iter().map(|j| (j.input, j.reply)).unzip();
                let statement = span.in_scope(|| run(inputs));
                tokio::spawn(
                    async move {
                        let _slot = slot;
                        answer(replies, statement.await);
                    }
                    .instrument(span),
                );
            }
        });
        this
    }

    /// Runs `input` at once if a slot is free, else in the next batch, and
    /// waits for its output.
    pub async fn call(&self, input: I) -> Result<O> {
        // Permits freed while the dispatcher waits go to the dispatcher (the
        // semaphore is fair), so a call cannot overtake a queued batch here.
        if let Ok(_slot) = self.slots.clone().try_acquire_owned() {
            return (self.run)(vec![input])
                .await?
                .pop()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("a statement answered no output")));
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job {
                input,
                reply,
                span: tracing::Span::current(),
            })
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }
}

/// Sends each caller its output, or the batch's failure. A failure is logged
/// here, once for the batch; each caller gets a status without the cause.
fn answer<O>(replies: Vec<oneshot::Sender<Result<O>>>, outcome: Result<Vec<O>>) {
    match outcome {
        Ok(outputs) if outputs.len() == replies.len() => {
            for (reply, output) in replies.into_iter().zip(outputs) {
                // A caller whose deadline passed has gone; nothing to do.
                let _ = reply.send(Ok(output));
            }
        }
        Ok(outputs) => {
            tracing::error!(
                calls = replies.len(),
                outputs = outputs.len(),
                "a batch answered the wrong number of calls"
            );
            for reply in replies {
                let _ = reply.send(Err(Error::BatchFailed { unavailable: false }));
            }
        }
        Err(e) => {
            let unavailable = matches!(e, Error::Unavailable(_));
            e.log_cause();
            for reply in replies {
                let _ = reply.send(Err(Error::BatchFailed { unavailable }));
            }
        }
    }
}
