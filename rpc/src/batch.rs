//! The RPC middleware that starts a batch's consecutive transaction
//! submissions together.
//!
//! jsonrpsee answers a batch's calls one after another, each awaited
//! before the next starts. For `eth_sendRawTransaction` and `tx_submit`
//! that meant one trip to the node's admission workers per call. Started
//! together, the calls reach the node's intake before its worker runs,
//! and the node admits them as one batch, in the order they were sent
//! (each call queues its transaction when it starts). Everything else in
//! a batch still runs one call at a time, in order, as before: a read
//! after a submission in the same batch sees it.

use std::future::Future;

use jsonrpsee::core::server::BatchResponseBuilder;
use jsonrpsee::server::middleware::rpc::{
    Batch, BatchEntry, BatchEntryErr, MethodResponse, Notification, RpcServiceT,
};
use jsonrpsee::types::Request;

/// Methods whose consecutive calls in a batch start together.
const SUBMISSIONS: [&str; 2] = ["eth_sendRawTransaction", "tx_submit"];

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
            let mut notified = false;
            let mut entries = batch.into_iter().peekable();
            while let Some(entry) = entries.next() {
                let responses = match entry {
                    Ok(BatchEntry::Call(req)) if SUBMISSIONS.contains(&req.method_name()) => {
                        let mut calls = vec![inner.call(req)];
                        while let Some(Ok(BatchEntry::Call(req))) = entries.next_if(is_submission) {
                            calls.push(inner.call(req));
                        }
                        // `join_all` first polls the calls in order, so each
                        // queues its transaction in the order sent.
                        futures::future::join_all(calls).await
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
