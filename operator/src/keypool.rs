//! Fresh private keys for issuance, and the optional pool of keys generated in advance.
//!
//! Every new certificate key comes from [`fresh_key`]: at most one generation per core at a
//! time (one turn each, [`KeyPool::turns`]), on a blocking thread. Without a bound, a burst
//! of a thousand new certificates started a thousand RSA generations at once; they all
//! slowed down together and starved the async workers, whose leader-lease renewals then
//! came too late.
//!
//! With `--key-pool-size N` (default [`DEFAULT_SIZE`]; 0 turns it off) a filler keeps up
//! to N keys of each pooled key type in memory, generated at the lowest priority: only while
//! the operator is idle (no issuance waiting for a generation, and none had to generate a
//! key in the last [`QUIET`]), never waiting in line for a turn (it takes a free one or
//! none), one key at a time. [`fresh_key`] takes a pooled key first. A pooled key is removed
//! when taken (never handed out twice), exists only in this process's memory (never
//! written, never logged: `Debug` shows counts), and the pool is emptied when the
//! controllers stop (shutdown or a lost lease: a standby does not issue).

use std::{
    collections::HashMap,
    fmt,
    sync::{LazyLock, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::{Notify, Semaphore};
use tracing::warn;

use crate::pki::{KeyAlgorithm, KeySpec, PkiError, PrivateKey};

/// Keys kept per pooled type unless `--key-pool-size` says otherwise. Sixteen RSA-2048 keys
/// are about 1 s of one core once when a replica starts leading, and a few KiB of memory;
/// they make a single new certificate Ready without waiting for its key (B2 in
/// BENCHMARKS.md, "A new machine; the key pool on by default").
pub const DEFAULT_SIZE: usize = 16;

/// How long a key type asked for stays pooled under `recent`.
pub const RECENT: Duration = Duration::from_secs(3600);

/// Time without any issuance asking for a key after which the operator counts as idle: in a
/// burst the filler stays out of the way; between single issuances it refills.
pub const QUIET: Duration = Duration::from_millis(100);

/// Longest the filler sleeps without a wake-up (a key taken, an issuance done).
const FILLER_TICK: Duration = Duration::from_secs(1);

/// A key type to pool (`--key-pool-types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolType {
    /// Always this key type.
    Spec(KeySpec),
    /// The key types issuances asked for in the last hour ([`RECENT`]).
    Recent,
}

impl std::str::FromStr for PoolType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec = |algorithm, size| Ok(PoolType::Spec(KeySpec { algorithm, size }));
        match s.trim().to_ascii_lowercase().as_str() {
            "recent" => Ok(PoolType::Recent),
            "rsa-2048" => spec(KeyAlgorithm::Rsa, 2048),
            "rsa-3072" => spec(KeyAlgorithm::Rsa, 3072),
            "rsa-4096" => spec(KeyAlgorithm::Rsa, 4096),
            "ecdsa-p256" => spec(KeyAlgorithm::Ecdsa, 256),
            "ecdsa-p384" => spec(KeyAlgorithm::Ecdsa, 384),
            other => Err(format!(
                "unknown key type {other:?}: expected rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384 or recent"
            )),
        }
    }
}

/// What the pool keeps: `size` keys of each of `types` (0: no pool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSettings {
    /// Keys kept per key type.
    pub size: usize,
    /// The key types pooled.
    pub types: Vec<PoolType>,
}

/// The generation turns and the pool. One per process ([`global`]); tests make their own.
pub struct KeyPool {
    /// One turn per core: a generation runs only while it holds one.
    turns: Semaphore,
    state: Mutex<State>,
    /// Wakes the filler: a key was taken, or the last waiting issuance got its key.
    wake: Notify,
}

/// The pool's decisions work on this; no I/O and no clock of its own.
#[derive(Default)]
struct State {
    settings: PoolSettings,
    /// When an issuance last asked for a key of each type.
    asked: HashMap<KeySpec, Instant>,
    keys: HashMap<KeySpec, Vec<PrivateKey>>,
    /// Issuances between asking for a generation and having their key.
    waiting: usize,
    /// When an issuance last found no pooled key, or got a generated one.
    busy_at: Option<Instant>,
}

impl State {
    /// The key types pooled at `now`, in a fixed order.
    fn wanted(&self, now: Instant) -> Vec<KeySpec> {
        let mut out = Vec::new();
        for t in &self.settings.types {
            match t {
                PoolType::Spec(s) => out.push(*s),
                PoolType::Recent => {
                    let mut recent: Vec<KeySpec> = self
                        .asked
                        .iter()
                        .filter(|(_, at)| now.saturating_duration_since(**at) < RECENT)
                        .map(|(s, _)| *s)
                        .collect();
                    recent.sort_by_key(|s| (s.algorithm == KeyAlgorithm::Ecdsa, s.size));
                    out.extend(recent);
                }
            }
        }
        let mut seen = Vec::new();
        out.retain(|s| {
            let new = !seen.contains(s);
            seen.push(*s);
            new
        });
        out
    }

    /// How long the operator must stay quiet before the filler may start; zero when idle.
    fn quiet_left(&self, now: Instant) -> Duration {
        self.busy_at.map_or(Duration::ZERO, |at| {
            QUIET.saturating_sub(now.saturating_duration_since(at))
        })
    }

    /// The key type the filler generates next: none while an issuance waits for a
    /// generation or had to generate one within [`QUIET`], or when every pooled type is full;
    /// otherwise the one with the fewest keys.
    fn next_to_fill(&self, now: Instant) -> Option<KeySpec> {
        if self.settings.size == 0 || self.waiting > 0 || !self.quiet_left(now).is_zero() {
            return None;
        }
        self.wanted(now)
            .into_iter()
            .map(|s| (s, self.keys.get(&s).map_or(0, Vec::len)))
            .filter(|(_, n)| *n < self.settings.size)
            .min_by_key(|(_, n)| *n)
            .map(|(s, _)| s)
    }

    /// Removes and returns a pooled key of `spec`. An issuance the pool serves leaves the
    /// operator idle (the filler replaces the key at once, on a free core); one it cannot
    /// serve must generate, and the operator counts as busy for [`QUIET`].
    fn take(&mut self, spec: KeySpec, now: Instant) -> Option<PrivateKey> {
        if self.settings.size > 0 {
            self.asked.insert(spec, now);
        }
        let key = self.keys.get_mut(&spec).and_then(Vec::pop);
        if key.is_none() {
            self.busy_at = Some(now);
        }
        key
    }

    /// Adds a generated key, if its type is still pooled and not full; drops it otherwise.
    fn put(&mut self, key: PrivateKey, now: Instant) {
        let spec = key.spec();
        if !self.wanted(now).contains(&spec) {
            return;
        }
        let keys = self.keys.entry(spec).or_default();
        if keys.len() < self.settings.size {
            keys.push(key);
        }
    }

    /// Drops the keys of types no longer pooled, and any beyond the size.
    fn prune(&mut self, now: Instant) {
        let wanted = self.wanted(now);
        let size = self.settings.size;
        self.keys.retain(|s, keys| {
            keys.truncate(size);
            wanted.contains(s) && !keys.is_empty()
        });
    }

    fn counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .keys
            .iter()
            .map(|(s, k)| (s.to_string(), k.len()))
            .collect();
        v.sort();
        v
    }
}

/// Counts an issuance as waiting for a generation while it lives.
struct Asking<'a>(&'a KeyPool);

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        let idle = {
            let mut state = self.0.state();
            state.waiting -= 1;
            state.busy_at = Some(Instant::now());
            state.waiting == 0
        };
        if idle {
            self.0.wake.notify_one();
        }
    }
}

/// Empties the pool when the filler stops, however it stops (returned, or dropped with the
/// controllers when the lease is lost).
struct EmptyOnDrop<'a>(&'a KeyPool);

impl Drop for EmptyOnDrop<'_> {
    fn drop(&mut self) {
        self.0.empty();
    }
}

impl KeyPool {
    /// A pool with `turns` generations at a time and no pooled keys.
    pub fn new(turns: usize, settings: PoolSettings) -> Self {
        KeyPool {
            turns: Semaphore::new(turns.max(1)),
            state: Mutex::new(State {
                settings,
                ..State::default()
            }),
            wake: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts and keys consistent (every change
        // is one statement): keep using them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what the pool keeps; keys of types no longer pooled are dropped.
    pub fn configure(&self, settings: PoolSettings) {
        let mut state = self.state();
        state.settings = settings;
        state.prune(Instant::now());
    }

    /// Whether a pool is configured.
    pub fn enabled(&self) -> bool {
        self.state().settings.size > 0
    }

    /// A new key of `spec` that nobody else has: a pooled one, or one generated now in
    /// this caller's turn.
    pub async fn fresh_key(&self, spec: KeySpec) -> Result<PrivateKey, PkiError> {
        if let Some(key) = self.take(spec) {
            return Ok(key);
        }
        let _asking = {
            self.state().waiting += 1;
            Asking(self)
        };
        let _turn = self
            .turns
            .acquire()
            .await
            .map_err(|_| PkiError::KeyGeneration("key generation turns closed".into()))?;
        // The filler may have finished a key of this type while we waited for the turn.
        if let Some(key) = self.take(spec) {
            return Ok(key);
        }
        generate(spec).await
    }

    /// Removes a pooled key of `spec`, if there is one, and wakes the filler to replace it.
    fn take(&self, spec: KeySpec) -> Option<PrivateKey> {
        let key = self.state().take(spec, Instant::now());
        if key.is_some() {
            self.wake.notify_one();
        }
        key
    }

    /// Generates one pooled key if the pool wants one and a turn is free with no issuance
    /// waiting; returns whether it did.
    async fn fill_once(&self) -> bool {
        let Some(spec) = self.state().next_to_fill(Instant::now()) else {
            return false;
        };
        // A free turn or none: the filler never waits in line before an issuance.
        let Ok(turn) = self.turns.try_acquire() else {
            return false;
        };
        if self.state().waiting > 0 {
            return false;
        }
        let key = generate(spec).await;
        drop(turn);
        match key {
            Ok(key) => {
                self.state().put(key, Instant::now());
                true
            }
            Err(e) => {
                warn!(key = %spec, error = %e, "could not generate a key for the pool");
                false
            }
        }
    }

    /// Keeps the pool filled until `stop` resolves, then empties it. Does nothing while the
    /// pool is off.
    pub async fn fill(&self, stop: impl std::future::Future<Output = ()>) {
        let _empty = EmptyOnDrop(self);
        if !self.enabled() {
            return stop.await;
        }
        let filling = async {
            loop {
                if !self.fill_once().await {
                    let pause = {
                        let mut state = self.state();
                        state.prune(Instant::now());
                        match state.quiet_left(Instant::now()) {
                            d if d.is_zero() => FILLER_TICK,
                            d => d,
                        }
                    };
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        };
        tokio::select! {
            _ = stop => {}
            _ = filling => {}
        }
    }

    /// Drops every pooled key.
    pub fn empty(&self) {
        self.state().keys.clear();
    }
}

impl fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("KeyPool")
            .field("settings", &state.settings)
            .field("pooled", &state.counts())
            .field("waiting", &state.waiting)
            .finish_non_exhaustive()
    }
}

/// Generates a key on a blocking thread (RSA takes tens of milliseconds).
async fn generate(spec: KeySpec) -> Result<PrivateKey, PkiError> {
    tokio::task::spawn_blocking(move || spec.generate())
        .await
        .map_err(|_| PkiError::KeyGeneration("key generation task failed".into()))?
}

static POOL: LazyLock<KeyPool> = LazyLock::new(|| {
    KeyPool::new(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
        PoolSettings::default(),
    )
});

/// The process's key pool (turns: one per core, `available_parallelism`).
pub fn global() -> &'static KeyPool {
    &POOL
}

/// A new key of `spec` for an issuance, from the process's pool or generated in turn.
pub async fn fresh_key(spec: KeySpec) -> Result<PrivateKey, PkiError> {
    POOL.fresh_key(spec).await
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, sync::Arc};

    use super::*;

    const P256: KeySpec = KeySpec::ECDSA_P256;

    fn pool(turns: usize, size: usize, types: Vec<PoolType>) -> KeyPool {
        KeyPool::new(turns, PoolSettings { size, types })
    }

    /// As if the last issuance had asked [`QUIET`] ago.
    fn quiet(p: &KeyPool) {
        p.state().busy_at = Some(Instant::now() - QUIET);
    }

    #[tokio::test]
    async fn bounded_and_the_filler_stops_when_full() {
        let p = pool(2, 3, vec![PoolType::Spec(P256)]);
        let mut generated = 0;
        while p.fill_once().await {
            generated += 1;
            assert!(generated <= 3, "filled beyond the size");
        }
        assert_eq!(generated, 3);
        assert_eq!(p.state().keys[&P256].len(), 3);
        assert_eq!(p.state().next_to_fill(Instant::now()), None);
        // A key the pool served is replaced at once: exactly one.
        p.fresh_key(P256).await.unwrap();
        assert!(p.fill_once().await, "a served key is replaced while idle");
        assert!(!p.fill_once().await);
        // An issuance the pool cannot serve generates: the filler waits for quiet.
        p.empty();
        p.fresh_key(P256).await.unwrap();
        assert!(!p.fill_once().await, "filled right after a generation");
        quiet(&p);
        assert!(p.fill_once().await);
    }

    #[tokio::test]
    async fn size_zero_generates_nothing_ahead() {
        let p = pool(2, 0, vec![PoolType::Spec(P256), PoolType::Recent]);
        assert!(!p.fill_once().await);
        p.fresh_key(P256).await.unwrap();
        assert!(!p.fill_once().await);
        assert!(p.state().keys.is_empty());
        assert!(p.state().asked.is_empty());
    }

    #[tokio::test]
    async fn never_hands_out_the_same_key_twice() {
        let p = pool(2, 4, vec![PoolType::Spec(P256)]);
        while p.fill_once().await {}
        let pooled: HashSet<Vec<u8>> = p.state().keys[&P256]
            .iter()
            .map(|k| k.public_key_der())
            .collect();
        assert_eq!(pooled.len(), 4);
        let mut seen = HashSet::new();
        for _ in 0..8 {
            let key = p.fresh_key(P256).await.unwrap();
            assert!(seen.insert(key.public_key_der()), "a key handed out twice");
            assert!(
                !p.state()
                    .keys
                    .get(&P256)
                    .is_some_and(|k| k.iter().any(|k| k.public_key_der() == key.public_key_der())),
                "a taken key is still in the pool"
            );
        }
        // The first four came from the pool, the next four were generated.
        assert!(pooled.iter().all(|k| seen.contains(k)));
        assert!(p.state().keys.get(&P256).is_none_or(Vec::is_empty));
    }

    #[tokio::test]
    async fn a_waiting_issuance_is_not_starved() {
        // One turn, held by a running generation of an issuance.
        let p = Arc::new(pool(1, 4, vec![PoolType::Spec(P256)]));
        let held = p.turns.try_acquire().unwrap();
        let issuance = tokio::spawn({
            let p = p.clone();
            async move { p.fresh_key(P256).await }
        });
        while p.state().waiting == 0 {
            tokio::task::yield_now().await;
        }
        // It has waited longer than QUIET (a long generation holds the turn).
        quiet(&p);
        // The filler neither generates nor queues for the turn while the issuance waits.
        assert_eq!(p.state().next_to_fill(Instant::now()), None);
        assert!(!p.fill_once().await);
        assert_eq!(p.turns.available_permits(), 0);
        drop(held);
        issuance.await.unwrap().unwrap();
        // Idle again once quiet: the filler may fill.
        assert_eq!(p.state().waiting, 0);
        assert!(!p.fill_once().await, "filled right after an issuance");
        quiet(&p);
        assert!(p.fill_once().await);
    }

    #[test]
    fn the_filler_waits_for_a_quiet_moment() {
        let now = Instant::now();
        let mut s = State {
            settings: PoolSettings {
                size: 2,
                types: vec![PoolType::Spec(P256)],
            },
            ..State::default()
        };
        assert_eq!(s.next_to_fill(now), Some(P256));
        // A pooled key served: still idle, the filler replaces it.
        s.put(P256.generate().unwrap(), now);
        assert!(s.take(P256, now).is_some());
        assert_eq!(s.quiet_left(now), Duration::ZERO);
        assert_eq!(s.next_to_fill(now), Some(P256));
        // An issuance the pool cannot serve: nothing for QUIET.
        assert!(s.take(P256, now).is_none());
        assert_eq!(s.quiet_left(now), QUIET);
        assert_eq!(s.next_to_fill(now + QUIET / 2), None);
        assert_eq!(s.next_to_fill(now + QUIET), Some(P256));
    }

    #[tokio::test]
    async fn the_filler_takes_no_turn_that_is_not_free() {
        let p = pool(1, 4, vec![PoolType::Spec(P256)]);
        let _held = p.turns.try_acquire().unwrap();
        assert!(!p.fill_once().await);
        assert!(p.state().keys.is_empty());
    }

    #[test]
    fn recent_pools_only_what_was_asked_for_within_the_hour() {
        let now = Instant::now();
        let mut s = State {
            settings: PoolSettings {
                size: 2,
                types: vec![PoolType::Recent],
            },
            ..State::default()
        };
        assert_eq!(s.next_to_fill(now), None);
        assert!(s.take(KeySpec::RSA_3072, now).is_none());
        assert_eq!(s.next_to_fill(now + QUIET), Some(KeySpec::RSA_3072));
        assert_eq!(s.next_to_fill(now + RECENT), None);
        // Fixed types first, then the recent ones; the emptiest is filled first.
        s.settings.types = vec![PoolType::Spec(KeySpec::RSA_2048), PoolType::Recent];
        assert_eq!(
            s.wanted(now),
            vec![KeySpec::RSA_2048, KeySpec::RSA_3072],
            "RSA-2048 fixed, RSA-3072 recent"
        );
        s.put(P256.generate().unwrap(), now);
        assert!(s.keys.is_empty(), "a key of a type not pooled is dropped");
    }

    #[tokio::test]
    async fn emptied_when_the_filler_stops_and_when_its_type_is_dropped() {
        let p = pool(2, 2, vec![PoolType::Spec(P256)]);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let filler = p.fill(async {
            let _ = rx.await;
        });
        let stopper = async {
            while p.state().keys.get(&P256).is_none_or(|k| k.len() < 2) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = tx.send(());
        };
        tokio::join!(filler, stopper);
        assert!(p.state().keys.is_empty());

        while p.fill_once().await {}
        p.configure(PoolSettings {
            size: 2,
            types: vec![PoolType::Spec(KeySpec::ECDSA_P384)],
        });
        assert!(p.state().keys.is_empty());
    }

    #[test]
    fn debug_shows_counts_not_keys() {
        let p = pool(1, 1, vec![PoolType::Spec(P256)]);
        let key = P256.generate().unwrap();
        let pem = key.to_pem();
        p.state().put(key, Instant::now());
        let shown = format!("{p:?}");
        assert!(shown.contains("(\"ECDSA P-256\", 1)"), "{shown}");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!shown.contains(&body[..40]), "{shown}");
    }

    #[test]
    fn key_types_parse() {
        assert_eq!(
            "RSA-2048".parse::<PoolType>(),
            Ok(PoolType::Spec(KeySpec::RSA_2048))
        );
        assert_eq!("recent".parse::<PoolType>(), Ok(PoolType::Recent));
        assert!("rsa-1024".parse::<PoolType>().is_err());
    }
}
