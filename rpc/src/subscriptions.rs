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

    /// jsonrpsee builds the RPC middleware once per WebSocket connection
    /// (and once per request over HTTP, which has no subscriptions).
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

/// Every unsubscribe method the server has (a test checks the server's
/// method list against it).
pub const UNSUBSCRIBES: [&str; 4] = [
    "chain_unsubscribeNewHeads",
    "tx_unsubscribeStatus",
    "eth_unsubscribe",
    "file_unsubscribeStatus",
];

/// The id an unsubscribe call names, when it is one.
fn unsubscribing(req: &Request<'_>) -> Option<SubscriptionId<'static>> {
    if !UNSUBSCRIBES.contains(&req.method_name()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use jsonrpsee::types::Id;
    use jsonrpsee::ResponsePayload;
    use serde_json::value::RawValue;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the calls that get through, and answers `true`.
    #[derive(Debug, Clone, Default)]
    struct Inner(Arc<AtomicUsize>);

    impl RpcServiceT for Inner {
        type MethodResponse = MethodResponse;
        type NotificationResponse = MethodResponse;
        type BatchResponse = MethodResponse;

        fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
            self.0.fetch_add(1, Ordering::SeqCst);
            let id = req.id().into_owned();
            async move { MethodResponse::response(id, ResponsePayload::success(true), usize::MAX) }
        }

        fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
            self.0.fetch_add(batch.len(), Ordering::SeqCst);
            async { MethodResponse::notification() }
        }

        fn notification<'a>(
            &self,
            _: Notification<'a>,
        ) -> impl Future<Output = MethodResponse> + Send + 'a {
            std::future::ready(MethodResponse::notification())
        }
    }

    fn unsubscribe(method: &str, id: &str) -> Request<'static> {
        let params = RawValue::from_string(format!("[\"{id}\"]")).expect("json");
        Request::owned(method.to_string(), Some(params), Id::Number(1))
    }

    /// An unsubscribe (alone or in a batch) naming an id being accepted
    /// waits until `accept` is over; other calls, and unsubscribes of ids
    /// not being accepted, go straight through.
    #[tokio::test]
    async fn an_unsubscribe_waits_for_its_subscription_to_open() {
        let inner = Inner::default();
        let service = tower::Layer::layer(&UnsubscribeAfterAcceptLayer, inner.clone());
        let id = SubscriptionId::Str("0xab".into());
        let opening = Accepting {
            gate: service.gate.clone(),
            id: id.clone(),
        };
        service.gate.ids().insert(id);

        let alone = tokio::spawn(service.call(unsubscribe("eth_unsubscribe", "0xab")));
        let mut batch = Batch::new();
        batch.push(unsubscribe("file_unsubscribeStatus", "0xab"));
        let batched = tokio::spawn(service.batch(batch));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            inner.0.load(Ordering::SeqCst),
            0,
            "went ahead of the accept"
        );

        // Other ids and other methods are not held.
        service.call(unsubscribe("eth_unsubscribe", "0xcd")).await;
        service.call(unsubscribe("eth_getBalance", "0xab")).await;
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);

        drop(opening);
        alone.await.expect("unsubscribe");
        batched.await.expect("batch");
        assert_eq!(inner.0.load(Ordering::SeqCst), 4);
    }
}
