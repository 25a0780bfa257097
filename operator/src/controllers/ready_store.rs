//! A reflector cache that any number of reconcile passes may wait on at the same time.
//!
//! kube-runtime 5.0's `Store::wait_until_ready` polls one `futures` oneshot receiver shared
//! by every waiter, and such a receiver keeps only the waker of the future that polled it
//! last. When several passes wait together (the passes a controller starts before its
//! issuer cache has listed), the filled cache wakes only one of them; the others wait
//! forever, holding their concurrency slots. That is how certificates went without any pass
//! after an operator start (BENCHMARKS.md, "The start-up hang found").
//!
//! [`ReadyStore::ready`] lets one waiter at a time poll the store's readiness (the others
//! wait on a tokio `OnceCell`, which wakes them all). `Store::wait_until_ready` is a
//! disallowed method (`clippy.toml`) everywhere but here.

use std::sync::Arc;

use kube::{Resource, runtime::reflector::Store};

/// A [`Store`] and whether it has been filled once, shared by its clones.
pub struct ReadyStore<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    /// `true` once the store has listed, `false` if its writer was dropped first.
    filled: Arc<tokio::sync::OnceCell<bool>>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Clone for ReadyStore<K> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            filled: self.filled.clone(),
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> std::fmt::Debug for ReadyStore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyStore")
            .field("objects", &self.store.len())
            .field("filled", &self.filled.get())
            .finish()
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> ReadyStore<K> {
    /// Wraps `store`. Make one per store and clone it: clones share the waiting.
    pub fn new(store: Store<K>) -> Self {
        Self {
            store,
            filled: Arc::default(),
        }
    }

    /// The store, once it has been filled; `None` if its writer was dropped before that.
    pub async fn ready(&self) -> Option<&Store<K>> {
        #[allow(clippy::disallowed_methods)] // the one waiter, see the module doc
        let filled = *self
            .filled
            .get_or_init(|| async { self.store.wait_until_ready().await.is_ok() })
            .await;
        filled.then_some(&self.store)
    }

    /// The store as it is now, filled or not.
    pub fn now(&self) -> &Store<K> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::{reflector, watcher::Event};

    use super::*;

    /// Many passes waiting at once are all woken when the store fills. With
    /// `Store::wait_until_ready` in place of `ready`, three of these four never finish.
    #[tokio::test]
    async fn every_waiter_is_woken_when_the_store_fills() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let ready = ReadyStore::new(store);
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let r = ready.clone();
                tokio::spawn(async move { r.ready().await.map(|s| s.len()) })
            })
            .collect();
        // Let every waiter poll (and register) before the store fills.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        writer.apply_watcher_event(&Event::Init);
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("one".into());
        cm.metadata.namespace = Some("default".into());
        writer.apply_watcher_event(&Event::InitApply(cm));
        writer.apply_watcher_event(&Event::InitDone);
        for w in waiters {
            let seen = tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("a waiter was never woken")
                .unwrap();
            assert_eq!(seen, Some(1));
        }
        // Later callers do not wait.
        assert!(ready.ready().await.is_some());
    }

    #[tokio::test]
    async fn a_dropped_writer_is_reported_to_every_waiter() {
        let (store, writer) = reflector::store::<ConfigMap>();
        let ready = ReadyStore::new(store);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let r = ready.clone();
                tokio::spawn(async move { r.ready().await.is_some() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(writer);
        for w in waiters {
            let filled = tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("a waiter was never woken")
                .unwrap();
            assert!(!filled);
        }
    }
}
