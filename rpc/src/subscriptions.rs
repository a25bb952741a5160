//! Unsubscribing at once after subscribing.
//!
//! jsonrpsee's `PendingSubscriptionSink::accept` sends the client its
//! subscription id, and only then records the subscription as open. A
//! client that unsubscribes as soon as it reads the id can be served in
//! between: it is answered `false` and the subscription goes on sending
//! (on a loaded machine, 1 in 70 quick `chain_unsubscribeNewHeads` and
//! most quick `file_unsubscribeStatus` calls, measured).
//!
//! So every subscription here is accepted through [`accept`], which notes
//! on its connection's [`AcceptGate`] that the id is being accepted until
//! `accept` returns; [`UnsubscribeAfterAcceptLayer`] holds a connection's
//! unsubscribe call for an id still being accepted until it is open. The
//! client learns an id only from the answer sent inside `accept`, after
//! it is noted, so no unsubscribe for it can pass the gate unseen.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jsonrpsee::core::server::{PendingSubscriptionAcceptError, SubscriptionSink};
use jsonrpsee::server::middleware::rpc::{
    Batch, BatchEntry, MethodResponse, Notification, RpcServiceT,
};
use jsonrpsee::types::{Request, SubscriptionId};
use jsonrpsee::{Extensions, PendingSubscriptionSink};
use tokio::sync::Notify;

/// Longest an unsubscribe waits for its subscription to open. Once the
/// client has its id, `accept` is a few instructions from done; this only
/// bounds a stalled server thread.
const LONGEST_WAIT: Duration = Duration::from_secs(2);

/// The subscriptions of one connection being accepted now.
#[derive(Debug, Default)]
pub struct AcceptGate {
    accepting: Mutex<HashSet<SubscriptionId<'static>>>,
    opened: Notify,
}

impl AcceptGate {
    fn ids(&self) -> std::sync::MutexGuard<'_, HashSet<SubscriptionId<'static>>> {
        self.accepting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn is_accepting(&self, id: &SubscriptionId<'static>) -> bool {
        self.ids().contains(id)
    }

    /// Returns once `id` is not being accepted, or after [`LONGEST_WAIT`].
    async fn opened(&self, id: &SubscriptionId<'static>) {
        let wait = async {
            loop {
                let opened = self.opened.notified();
                tokio::pin!(opened);
                // Registered before the check: a wake-up between the two
                // is not lost.
                opened.as_mut().enable();
                if !self.is_accepting(id) {
                    return;
                }
                opened.await;
            }
        };
        if tokio::time::timeout(LONGEST_WAIT, wait).await.is_err() {
            tracing::debug!(
                ?id,
                "unsubscribe went ahead of a subscription still opening"
            );
        }
    }
}

/// Clears its id from the gate when `accept` is over, however it ended.
struct Accepting {
    gate: Arc<AcceptGate>,
    id: SubscriptionId<'static>,
}

impl Drop for Accepting {
    fn drop(&mut self) {
        self.gate.ids().remove(&self.id);
        self.gate.opened.notify_waiters();
    }
}

/// Accepts a subscription so that an unsubscribe sent as soon as its id
/// arrives finds it open (see the module documentation). Without a gate
/// in `ext` (methods called in-process, not through the server), it is
/// `pending.accept()`.
pub async fn accept(
    pending: PendingSubscriptionSink,
    ext: &Extensions,
) -> Result<SubscriptionSink, PendingSubscriptionAcceptError> {
    let _accepting = ext.get::<Arc<AcceptGate>>().map(|gate| {
        let id = pending.subscription_id();
        gate.ids().insert(id.clone());
        Accepting {
            gate: gate.clone(),
            id,
        }
    });
    pending.accept().await
}

/// Gives each connection an [`AcceptGate`], in every call's extensions,
/// and holds its unsubscribe calls as the module documentation says.
#[derive(Debug, Clone, Copy)]
pub struct UnsubscribeAfterAcceptLayer;

impl<S> tower::Layer<S> for UnsubscribeAfterAcceptLayer {
    type Service = UnsubscribeAfterAccept<S>;

    /// jsonrpsee builds the RPC middleware once per connection.
    fn layer(&self, inner: S) -> UnsubscribeAfterAccept<S> {
        UnsubscribeAfterAccept {
            inner,
            gate: Arc::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct UnsubscribeAfterAccept<S> {
    inner: S,
    gate: Arc<AcceptGate>,
}

/// The id an unsubscribe call names, when it is one.
fn unsubscribing(req: &Request<'_>) -> Option<SubscriptionId<'static>> {
    if !req.method_name().contains("_unsubscribe") {
        return None;
    }
    req.params()
        .one::<SubscriptionId<'_>>()
        .ok()
        .map(SubscriptionId::into_owned)
}

impl<S> RpcServiceT for UnsubscribeAfterAccept<S>
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

    fn call<'a>(&self, mut req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        req.extensions_mut().insert(self.gate.clone());
        let inner = self.inner.clone();
        let gate = self.gate.clone();
        async move {
            if let Some(id) = unsubscribing(&req) {
                if gate.is_accepting(&id) {
                    gate.opened(&id).await;
                }
            }
            inner.call(req).await
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let mut held = Vec::new();
        for entry in batch.iter_mut().flatten() {
            entry.extensions_mut().insert(self.gate.clone());
            if let BatchEntry::Call(req) = entry {
                held.extend(unsubscribing(req).filter(|id| self.gate.is_accepting(id)));
            }
        }
        let inner = self.inner.clone();
        let gate = self.gate.clone();
        async move {
            // A client learns an id from an earlier message, so what the
            // batch unsubscribes is held before any of it runs.
            for id in &held {
                gate.opened(id).await;
            }
            inner.batch(batch).await
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
