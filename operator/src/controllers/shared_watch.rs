//! One watch read by several controllers.
//!
//! Three controllers want every Secret's metadata (the ServiceCertificate controller its
//! certificate Secrets, the Ingress and Gateway controllers the Secrets their TLS sections
//! name), and two want every CertificateOrder (the ServiceCertificate controller by
//! metadata, the SithsIssuer controller whole). Each used to list and watch on its own: at
//! 100 000 certificates three lists of 100 000 Secrets and two of 100 000 orders at every
//! start, which kept the apiserver busy for most of the start-up pass. A [`SharedWatch`]
//! runs one watch and hands each event to every reader, in order.
//!
//! Nothing is kept: a reader gets the events from the moment it subscribed, and the watch
//! waits for the slowest reader (a bounded queue each), so no event is lost or duplicated.
//! A reader that needs the whole list (its `Init` to `InitDone`) subscribes before the
//! watch runs; a reader that only takes triggers may subscribe later (the Gateway
//! controller, once Gateway API is served). A reader that goes away is dropped. Errors of
//! the watch are logged here, once, and reach no reader (kube-runtime's `watcher::Error`
//! cannot be copied); the watch retries with its backoff.

use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt as _, stream::BoxStream};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    core::{DeserializeGuard, PartialObjectMeta},
    runtime::watcher::{self, Event},
};
use tokio::sync::mpsc;
use tracing::warn;

use crate::api::CertificateOrder;

/// Events queued for one reader before the watch waits for it.
const QUEUE: usize = 64;

/// One reader's events (never errors: see the module documentation).
pub type Reader<K> = BoxStream<'static, watcher::Result<Event<K>>>;

/// The watches the controllers share.
#[derive(Debug, Clone)]
pub struct SharedWatches {
    /// Every Secret, by metadata.
    pub secrets: SharedWatch<PartialObjectMeta<Secret>>,
    /// Every CertificateOrder, whole (one an older schema admitted as its metadata and
    /// error).
    pub orders: SharedWatch<DeserializeGuard<CertificateOrder>>,
}

/// The ServiceCertificate controller's readers of the shared watches.
pub struct SharedReaders {
    /// Of [`SharedWatches::secrets`].
    pub secrets: Reader<PartialObjectMeta<Secret>>,
    /// Of [`SharedWatches::orders`].
    pub orders: Reader<DeserializeGuard<CertificateOrder>>,
}

impl std::fmt::Debug for SharedReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedReaders").finish_non_exhaustive()
    }
}

impl Default for SharedWatches {
    fn default() -> Self {
        Self {
            secrets: SharedWatch::new("Secret"),
            orders: SharedWatch::new("CertificateOrder"),
        }
    }
}

impl SharedWatches {
    /// Runs the watches (with [`super::watch`]'s backoff) until the process stops. Readers
    /// that need the whole list subscribe before this runs.
    pub async fn run(self, client: Client) {
        let config = watcher::Config::default().any_semantic();
        tokio::join!(
            self.secrets.run(super::watch(
                Api::<PartialObjectMeta<Secret>>::all(client.clone()),
                config.clone(),
            )),
            self.orders.run(super::watch(
                Api::<DeserializeGuard<CertificateOrder>>::all(client),
                config,
            )),
        );
    }
}

/// `event` with its object (if any) turned into another by `f`.
pub fn map_event<A, B>(event: Event<A>, f: impl FnOnce(A) -> B) -> Event<B> {
    match event {
        Event::Apply(o) => Event::Apply(f(o)),
        Event::Delete(o) => Event::Delete(f(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(f(o)),
        Event::InitDone => Event::InitDone,
    }
}

type Readers<K> = Arc<Mutex<Vec<mpsc::Sender<Event<K>>>>>;

/// The readers of one watch (cloned handles share them). See the module documentation.
#[derive(Debug)]
pub struct SharedWatch<K> {
    /// Named in the log when the watch fails.
    name: &'static str,
    readers: Readers<K>,
}

impl<K> Clone for SharedWatch<K> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            readers: self.readers.clone(),
        }
    }
}

impl<K: Clone + Send + 'static> SharedWatch<K> {
    /// A watch without readers yet; `name` is the watched kind, for the log.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            readers: Arc::default(),
        }
    }

    /// The events from now on, as a watch stream (its items are never errors).
    pub fn subscribe(&self) -> Reader<K> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        futures::stream::unfold(rx, |mut rx| async move {
            let event = rx.recv().await?;
            Some((Ok(event), rx))
        })
        .boxed()
    }

    /// Hands every event of `events` to the readers, until `events` ends; then the
    /// readers' streams end too.
    pub async fn run(self, events: impl Stream<Item = watcher::Result<Event<K>>> + Send) {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    warn!(
                        watch = self.name,
                        error = %crate::telemetry::redact_values(&e.to_string()),
                        "shared watch failed"
                    );
                    continue;
                }
            };
            let readers = self
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let mut gone = Vec::new();
            // A copy for each reader but the last, which takes the event itself.
            if let Some((last, others)) = readers.split_last() {
                for reader in others {
                    if reader.send(event.clone()).await.is_err() {
                        gone.push(reader.clone());
                    }
                }
                if last.send(event).await.is_err() {
                    gone.push(last.clone());
                }
            }
            if !gone.is_empty() {
                self.readers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|r| !gone.iter().any(|g| g.same_channel(r)));
            }
        }
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(items: &[u32]) -> Vec<watcher::Result<Event<u32>>> {
        let mut out = vec![Ok(Event::Init)];
        out.extend(items.iter().map(|&i| Ok(Event::InitApply(i))));
        out.push(Ok(Event::InitDone));
        out.push(Err(watcher::Error::NoResourceVersion));
        out.push(Ok(Event::Apply(99)));
        out
    }

    fn applied(seen: &[watcher::Result<Event<u32>>]) -> Vec<u32> {
        seen.iter()
            .filter_map(|e| match e {
                Ok(Event::InitApply(i) | Event::Apply(i)) => Some(*i),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn every_reader_gets_every_event_in_order_and_a_gone_reader_stops_nothing() {
        let items: Vec<u32> = (0..500).collect();
        let watch = SharedWatch::new("Test");
        let (a, b) = (watch.subscribe(), watch.subscribe());
        // A reader that goes away at once must not stop the others (its queue is far
        // smaller than the events).
        drop(watch.subscribe());
        let (_, seen_a, seen_b) = tokio::join!(
            watch.clone().run(futures::stream::iter(events(&items))),
            a.take(items.len() + 3).collect::<Vec<_>>(),
            // A slow reader: the watch waits for it.
            b.then(|e| async move {
                tokio::task::yield_now().await;
                e
            })
            .take(items.len() + 3)
            .collect::<Vec<_>>(),
        );
        for seen in [&seen_a, &seen_b] {
            assert!(matches!(seen.first(), Some(Ok(Event::Init))));
            assert!(seen.iter().all(Result::is_ok), "errors reach no reader");
            let mut expected = items.clone();
            expected.push(99);
            assert_eq!(applied(seen), expected);
        }
    }

    #[tokio::test]
    async fn a_late_reader_gets_the_events_from_when_it_subscribed() {
        let watch = SharedWatch::new("Test");
        let early = watch.subscribe();
        let (tx, rx) = mpsc::channel::<watcher::Result<Event<u32>>>(1);
        let source =
            futures::stream::unfold(rx, |mut rx| async move { Some((rx.recv().await?, rx)) });
        let driver = tokio::spawn(watch.clone().run(source));
        tx.send(Ok(Event::Apply(1))).await.unwrap();
        let mut early = Box::pin(early);
        assert!(matches!(early.next().await, Some(Ok(Event::Apply(1)))));
        let late = watch.subscribe();
        tx.send(Ok(Event::Apply(2))).await.unwrap();
        drop(tx);
        driver.await.unwrap();
        // The watch ended, so do the readers' streams.
        let late: Vec<_> = late.collect().await;
        assert_eq!(applied(&late), vec![2]);
        assert!(matches!(early.next().await, Some(Ok(Event::Apply(2)))));
        assert!(early.next().await.is_none());
    }
}
