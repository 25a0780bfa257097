//! Leader election with a coordination `Lease` (`kube-lease-manager`).
//!
//! One replica holds the lease and runs the controllers; the others stand by. The lease
//! manager acquires and renews the lease; this module decides, from the Lease object
//! itself, until when this replica may write:
//!
//! - leadership is valid until `renewTime + leaseDuration - grace / 2` of the last renewal
//!   this replica made and saw. The lease manager renews at `renewTime + duration - grace`
//!   and another replica may take the lease only after `renewTime + duration`, so the
//!   deadline leaves `grace / 2` for a renewal to arrive and `grace / 2` for clock skew.
//! - the deadline is local: a replica that cannot reach the API, is paused, or whose
//!   renewals fail, stops on its own when the deadline passes, without waiting for the
//!   lease manager to notice;
//! - the write [`Fence`] refuses every mutating request of the controllers' client once
//!   leadership is not valid, so even a request issued in the instant between losing the
//!   lease and the controllers being aborted never reaches the API server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use futures::StreamExt;
use http::{Method, Request};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tokio::{sync::Notify, task::JoinHandle};
use tracing::{info, warn};

/// Leader-election settings.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Name of the Lease.
    pub name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity (the pod name in a cluster).
    pub identity: String,
    /// Seconds a lease stays valid after a renewal.
    pub duration_seconds: u64,
    /// Seconds before expiry the holder renews.
    pub grace_seconds: u64,
}

impl LeaseSettings {
    /// Checks the timings: `0 < grace < duration`.
    pub fn validate(&self) -> Result<(), String> {
        if self.grace_seconds == 0 || self.grace_seconds >= self.duration_seconds {
            return Err(format!(
                "--lease-grace-seconds ({}) must be greater than 0 and less than --lease-duration-seconds ({})",
                self.grace_seconds, self.duration_seconds
            ));
        }
        Ok(())
    }
}

/// Until when `lease` lets `identity` write (Unix milliseconds), or `None` when it does
/// not hold the lease. `grace_seconds` is this replica's grace setting.
pub fn valid_until_ms(lease: &Lease, identity: &str, grace_seconds: u64) -> Option<i64> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0.as_millisecond();
    let duration = i64::from(spec.lease_duration_seconds?);
    let grace_ms = i64::try_from(grace_seconds).unwrap_or(i64::MAX / 2) * 1000;
    Some(renewed + duration * 1000 - grace_ms / 2)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Whether this replica may write, and a signal when that may have changed.
#[derive(Debug)]
pub struct Leadership {
    /// The lease manager's view: it reported this replica as the holder.
    elected: AtomicBool,
    /// The Lease object's view: valid until (Unix ms) of our last renewal.
    until_ms: AtomicI64,
    changed: Notify,
}

impl Leadership {
    /// Leadership that is always valid: leader election is turned off.
    pub fn always() -> Arc<Self> {
        Arc::new(Self {
            elected: AtomicBool::new(true),
            until_ms: AtomicI64::new(i64::MAX),
            changed: Notify::new(),
        })
    }

    fn contested() -> Arc<Self> {
        Arc::new(Self {
            elected: AtomicBool::new(false),
            until_ms: AtomicI64::new(0),
            changed: Notify::new(),
        })
    }

    /// Whether this replica may write now.
    pub fn is_leader(&self) -> bool {
        self.elected.load(Ordering::Acquire) && now_ms() < self.until_ms.load(Ordering::Acquire)
    }

    fn set_elected(&self, elected: bool) {
        self.elected.store(elected, Ordering::Release);
        self.changed.notify_waiters();
    }

    fn set_until(&self, until: Option<i64>) {
        self.until_ms.store(until.unwrap_or(0), Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Resolves once this replica may write.
    pub async fn acquired(&self) {
        loop {
            let notified = self.changed.notified();
            if self.is_leader() {
                return;
            }
            // Recheck now and then as well: the deadline is time, not an event.
            let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
        }
    }

    /// Resolves once this replica may no longer write: the lease manager reports the loss,
    /// the Lease names another holder, or the deadline of the last renewal passes.
    pub async fn lost(&self) {
        loop {
            let notified = self.changed.notified();
            if !self.is_leader() {
                return;
            }
            let left = self
                .until_ms
                .load(Ordering::Acquire)
                .saturating_sub(now_ms());
            let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
            let _ = tokio::time::timeout(left.min(Duration::from_secs(3600)), notified).await;
        }
    }

    /// A layer for the controllers' client that refuses writes unless this replica leads.
    pub fn fence(self: &Arc<Self>) -> tower::filter::FilterLayer<Fence> {
        tower::filter::FilterLayer::new(Fence(self.clone()))
    }
}

/// Refuses mutating requests unless this replica leads (see [`Leadership::fence`]).
#[derive(Debug, Clone)]
pub struct Fence(Arc<Leadership>);

/// The error a fenced request fails with.
#[derive(Debug, thiserror::Error)]
#[error("not the leader: write refused ({method} {path})")]
pub struct NotLeader {
    method: Method,
    path: String,
}

impl<B> tower::filter::Predicate<Request<B>> for Fence {
    type Request = Request<B>;

    fn check(&mut self, request: Request<B>) -> Result<Request<B>, tower::BoxError> {
        let read = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        if read || self.0.is_leader() {
            Ok(request)
        } else {
            Err(Box::new(NotLeader {
                method: request.method().clone(),
                path: request.uri().path().to_string(),
            }))
        }
    }
}

/// A running election: the lease manager's task and the Lease watch.
#[derive(Debug)]
pub struct Election {
    /// Shared view of whether this replica may write.
    pub leadership: Arc<Leadership>,
    manager: JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    channel: Option<tokio::sync::watch::Receiver<bool>>,
    lease_watch: JoinHandle<()>,
    reporter: JoinHandle<()>,
}

impl Election {
    /// Creates the Lease if needed and starts competing for it.
    pub async fn start(client: Client, settings: &LeaseSettings) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let manager = LeaseManagerBuilder::new(client.clone(), &settings.name)
            .with_namespace(&settings.namespace)
            .with_create_mode(LeaseCreateMode::AutoCreate)
            .with_identity(&settings.identity)
            .with_duration(settings.duration_seconds)
            .with_grace(settings.grace_seconds)
            .with_field_manager(format!("siths-operator-lease-{}", settings.identity))
            .build()
            .await
            .with_context(|| {
                format!(
                    "leader election: cannot use Lease {}/{} (does the namespace exist? set --lease-namespace or POD_NAMESPACE, or --leader-election=false)",
                    settings.namespace, settings.name
                )
            })?;
        let leadership = Leadership::contested();
        let (channel, manager) = manager.watch().await;

        let reporter = tokio::spawn({
            let leadership = leadership.clone();
            let mut channel = channel.clone();
            async move {
                loop {
                    let elected = *channel.borrow_and_update();
                    leadership.set_elected(elected);
                    if channel.changed().await.is_err() {
                        leadership.set_elected(false);
                        return;
                    }
                }
            }
        });

        let lease_watch = tokio::spawn({
            let leadership = leadership.clone();
            let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
            let config =
                watcher::Config::default().fields(&format!("metadata.name={}", settings.name));
            let identity = settings.identity.clone();
            let grace = settings.grace_seconds;
            async move {
                #[allow(clippy::disallowed_methods)] // with its own, shorter backoff
                let mut events = watcher(api, config)
                    .backoff(LeaseWatchBackoff::default())
                    .boxed();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) => {
                            leadership.set_until(valid_until_ms(&lease, &identity, grace));
                        }
                        Ok(watcher::Event::Delete(_)) => leadership.set_until(None),
                        Ok(_) => {}
                        // The deadline runs out on its own while the watch is broken.
                        Err(e) => warn!(error = %e, "watching the leader Lease failed"),
                    }
                }
            }
        });
        Ok(Self {
            leadership,
            manager,
            channel: Some(channel),
            lease_watch,
            reporter,
        })
    }

    /// Whether the election machinery still runs (a dead lease manager means this replica
    /// can never lead again; the process should exit).
    pub fn is_running(&self) -> bool {
        !self.manager.is_finished() && !self.lease_watch.is_finished()
    }

    /// Gives the lease up, so another replica takes over at once instead of after the
    /// lease duration.
    pub async fn release(mut self) {
        self.leadership.set_elected(false);
        self.reporter.abort();
        self.lease_watch.abort();
        // Closing the channel makes the manager release the lease and return.
        drop(self.channel.take());
        match tokio::time::timeout(Duration::from_secs(5), &mut self.manager).await {
            Ok(Ok(Ok(_))) => info!("leader lease released"),
            Ok(Ok(Err(e))) => warn!(error = %e, "could not release the leader lease"),
            Ok(Err(e)) => warn!(error = %e, "lease manager task failed"),
            Err(_) => {
                warn!("releasing the leader lease timed out");
                self.manager.abort();
            }
        }
    }
}

/// The Lease watch's delays between retries: 200 ms, doubling to at most 2 s, from the
/// start again after a success. Without a backoff a stopped apiserver was retried in a
/// tight loop (some 58 000 warnings a second). The watchers' default caps at 30 s: after
/// an outage a replica would then see its renewed Lease, and start its controllers, up to
/// half a minute late (the outage e2e test). One watch of one object every 2 s costs the
/// apiserver nothing.
#[derive(Debug, Default)]
struct LeaseWatchBackoff {
    next: Option<Duration>,
}

impl Iterator for LeaseWatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next.unwrap_or(Duration::from_millis(200));
        self.next = Some((delay * 2).min(Duration::from_secs(2)));
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for LeaseWatchBackoff {
    fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_watch_retries_soon_and_never_in_a_tight_loop() {
        use kube::runtime::utils::Backoff as _;
        let mut b = LeaseWatchBackoff::default();
        let ms: Vec<u128> = b.by_ref().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(200)));
    }
    use k8s_openapi::{
        api::coordination::v1::LeaseSpec, apimachinery::pkg::apis::meta::v1::MicroTime,
    };

    fn lease(holder: Option<&str>, renewed_ms: i64, duration: i32) -> Lease {
        Lease {
            metadata: Default::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                renew_time: Some(MicroTime(
                    jiff::Timestamp::from_millisecond(renewed_ms).expect("ts"),
                )),
                lease_duration_seconds: Some(duration),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_holder_may_write_until_half_the_grace_before_expiry() {
        let l = lease(Some("a"), 1_000_000, 15);
        // 1 000 000 + 15 000 - 5 000 / 2
        assert_eq!(valid_until_ms(&l, "a", 5), Some(1_012_500));
        // The renewal (at duration - grace = 10 s) comes before the deadline, and the
        // deadline comes before anyone else may take the lease (15 s).
        let until = valid_until_ms(&l, "a", 5).expect("holder");
        assert!(1_000_000 + 10_000 < until && until < 1_000_000 + 15_000);
    }

    #[test]
    fn others_and_empty_leases_give_no_leadership() {
        assert_eq!(valid_until_ms(&lease(Some("b"), 1_000, 15), "a", 5), None);
        assert_eq!(valid_until_ms(&lease(None, 1_000, 15), "a", 5), None);
        assert_eq!(valid_until_ms(&Lease::default(), "a", 5), None);
    }

    #[test]
    fn grace_must_be_shorter_than_the_duration() {
        let s = |duration_seconds, grace_seconds| LeaseSettings {
            name: "l".into(),
            namespace: "n".into(),
            identity: "i".into(),
            duration_seconds,
            grace_seconds,
        };
        assert!(s(15, 5).validate().is_ok());
        assert!(s(15, 15).validate().is_err());
        assert!(s(15, 0).validate().is_err());
    }

    #[tokio::test]
    async fn the_fence_refuses_writes_once_the_deadline_passes() {
        use tower::filter::Predicate;
        let leadership = Leadership::contested();
        leadership.set_elected(true);
        leadership.set_until(Some(now_ms() + 200));
        let mut fence = Fence(leadership.clone());
        let get = || Request::get("/api/v1/secrets").body(()).expect("req");
        let patch = || {
            Request::patch("/api/v1/namespaces/a/secrets/b")
                .body(())
                .expect("req")
        };
        assert!(fence.check(patch()).is_ok());
        tokio::time::timeout(Duration::from_secs(2), leadership.lost())
            .await
            .expect("lost when the deadline passes");
        let err = fence.check(patch()).expect_err("refused");
        assert!(err.to_string().contains("not the leader"), "{err}");
        assert!(fence.check(get()).is_ok(), "reads stay allowed");

        // The lease manager reporting the loss ends leadership at once, deadline or not.
        leadership.set_until(Some(now_ms() + 60_000));
        assert!(leadership.is_leader());
        leadership.set_elected(false);
        assert!(!leadership.is_leader());
        assert!(fence.check(patch()).is_err());
    }
}
