//! The RPC middleware that starts a batch's consecutive transaction
//! submissions together.
//!
//! jsonrpsee answers a batch's calls one after another, each awaited
//! before the next starts. For `eth_sendRawTransaction` and `tx_submit`
//! that meant one trip to the node's admission workers per call. Started
//! together, each call queues its transaction with the node's intake as
//! it starts, in the order sent, and the intake admits what is queued in
//! batches, in that order (usually all of the run in one, or two when its
//! worker wakes while the run is still starting). Everything else in a
//! batch still runs one call at a time, in order, as before: a read after
//! a submission in the same batch sees it.
//!
//! jsonrpsee stops running a batch's calls once its answer outgrows the
//! response limit. A run is started together only when its answers surely
//! fit what is left ([`ANSWER_BYTES`] each); otherwise its calls run one at
//! a time, so no call runs whose answer would be thrown away.

use std::future::Future;

use jsonrpsee::core::server::BatchResponseBuilder;
use jsonrpsee::server::middleware::rpc::{
    Batch, BatchEntry, BatchEntryErr, MethodResponse, Notification, RpcServiceT,
};
use jsonrpsee::types::Request;

/// Methods whose consecutive calls in a batch start together.
const SUBMISSIONS: [&str; 2] = ["eth_sendRawTransaction", "tx_submit"];

/// The most a submission's answer takes besides its id: a hash, or an
/// error whose message names the reason (a few hundred bytes).
pub const ANSWER_BYTES: usize = 1024;

fn answer_bound(req: &Request<'_>) -> usize {
    ANSWER_BYTES.saturating_add(serde_json::to_string(&req.id).map_or(ANSWER_BYTES, |id| id.len()))
}

fn is_submission(entry: &Result<BatchEntry<'_>, BatchEntryErr<'_>>) -> bool {
    matches!(entry, Ok(BatchEntry::Call(req)) if SUBMISSIONS.contains(&req.method_name()))
}

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct SubmissionsTogetherLayer {
    /// The server's limit on a response's size, which the batch's answer
    /// keeps as jsonrpsee's own batch handling does.
    pub max_response_bytes: u32,
}

impl<S> tower::Layer<S> for SubmissionsTogetherLayer {
    type Service = SubmissionsTogether<S>;

    fn layer(&self, inner: S) -> SubmissionsTogether<S> {
        SubmissionsTogether {
            inner,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SubmissionsTogether<S> {
    inner: S,
    max_response_bytes: u32,
}

impl<S> RpcServiceT for SubmissionsTogether<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.call(req)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        let limit = usize::try_from(self.max_response_bytes).unwrap_or(usize::MAX);
        async move {
            let mut answers = BatchResponseBuilder::new_with_limit(limit);
            // What the answer takes so far, as the builder counts it: `[`,
            // then each answer and a separator.
            let mut used = 1usize;
            let mut notified = false;
            let mut entries = batch.into_iter().peekable();
            while let Some(entry) = entries.next() {
                let responses = match entry {
                    Ok(BatchEntry::Call(req)) if SUBMISSIONS.contains(&req.method_name()) => {
                        let mut bound = answer_bound(&req);
                        let mut calls = vec![inner.call(req)];
                        while let Some(Ok(BatchEntry::Call(req))) = entries.next_if(is_submission) {
                            bound = bound.saturating_add(answer_bound(&req));
                            calls.push(inner.call(req));
                        }
                        if used.saturating_add(bound) <= limit {
                            // `join_all` first polls the calls in order, so
                            // each queues its transaction in the order sent.
                            futures::future::join_all(calls).await
                        } else {
                            let mut one_by_one = Vec::with_capacity(calls.len());
                            for call in calls {
                                let r = call.await;
                                let fits =
                                    used.saturating_add(r.as_json().get().len() + 1) <= limit;
                                one_by_one.push(r);
                                if !fits {
                                    break;
                                }
                            }
                            one_by_one
                        }
                    }
                    Ok(BatchEntry::Call(req)) => vec![inner.call(req).await],
                    Ok(BatchEntry::Notification(n)) => {
                        notified = true;
                        inner.notification(n).await;
                        continue;
                    }
                    Err(e) => {
                        let (e, id) = e.into_parts();
                        vec![MethodResponse::error(id, e)]
                    }
                };
                for r in responses {
                    used = used.saturating_add(r.as_json().get().len() + 1);
                    if let Err(too_big) = answers.append(r) {
                        return too_big;
                    }
                }
            }
            // As jsonrpsee: a batch of notifications only gets no answer;
            // an empty batch is refused before it gets here.
            if answers.is_empty() && notified {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(answers.finish())
            }
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
