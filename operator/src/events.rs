//! Kubernetes Events (`events.k8s.io/v1`) for people.
//!
//! kube's `Recorder` folds a repeat of an event into a series, as this publisher does, but
//! remembers every event it published in the last six minutes as a whole `Event` (its
//! object reference, note, names and timestamps) and drops old ones only when it publishes
//! the next. Right after a burst of issuances that was two whole events per certificate
//! issued in those six minutes. This publisher remembers a 64-bit digest of what makes two
//! events the same and the name of the `Event` object it created: some eighty bytes each.
//!
//! Two events are the same when they regard the same object (by UID) with the same type,
//! reason, action, note and related object (the API server refuses a changed note on an
//! existing `Event`); a repeat within [`SERIES_WINDOW`] raises the series count of the
//! `Event` already published.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};

/// How long a repeat of an event counts into the series of the first (kube's and
/// client-go's figure).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// How often forgotten events are swept out, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// An event to publish.
#[derive(Clone, Copy, Debug)]
pub struct Note<'a> {
    /// `Warning` instead of `Normal`.
    pub warning: bool,
    /// Machine-readable reason (`Issued`, `SecretConflict`, ...).
    pub reason: &'a str,
    /// What the operator did or tried (`Issue`, `Reconcile`, ...).
    pub action: &'a str,
    /// Human-readable text, cut to 1 000 bytes. Part of what makes an event the same.
    pub note: &'a str,
    /// A second object the event is about.
    pub related: Option<&'a ObjectReference>,
}

/// Publishes events on behalf of one controller instance.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

impl Publisher {
    /// A publisher reporting as `controller` / `instance` (the pod's name).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            instance: instance.unwrap_or_else(|| controller.to_string()),
            controller: controller.to_string(),
            recent: Mutex::new(Recent::default()),
        }
    }

    /// Publishes `note` on the object `regarding`: a new `Event`, or a higher series count
    /// on the one published for the same event within [`SERIES_WINDOW`] (deleted since: a
    /// new one).
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        note: Note<'_>,
    ) -> Result<(), kube::Error> {
        let key = digest(regarding, &note);
        let repeat = self.lock().repeat_of(key, Instant::now());
        let api: Api<Event> = Api::namespaced(
            self.client.clone(),
            regarding.namespace.as_deref().unwrap_or("default"),
        );
        let text = note_text(note.note);
        let now = Timestamp::now();
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({
                "series": { "count": count, "lastObservedTime": MicroTime(now) },
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.lock().remember(key, name, count, Instant::now());
                    return Ok(());
                }
                // Deleted since (by its TTL or by hand): publish it anew.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: regarding.namespace.clone(),
                ..Default::default()
            },
            action: Some(note.action.to_string()),
            reason: Some(note.reason.to_string()),
            note: Some(text.to_string()),
            type_: Some(if note.warning { "Warning" } else { "Normal" }.to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: note.related.cloned(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &event).await?;
        self.lock().remember(key, name, 1, Instant::now());
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many events are remembered for series.
    pub fn remembered(&self) -> usize {
        self.lock().entries.len()
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("controller", &self.controller)
            .field("instance", &self.instance)
            .field("remembered", &self.remembered())
            .finish_non_exhaustive()
    }
}

/// The note as published: cut to 1 000 bytes on a character boundary.
fn note_text(note: &str) -> &str {
    crate::policy::conditions::truncate(note, 1000)
}

/// What makes two events the same, as a 64-bit digest.
fn digest(regarding: &ObjectReference, note: &Note<'_>) -> u64 {
    let mut h = DefaultHasher::new();
    // The UID tells a re-created object from the old one; kind, namespace and name stand in
    // for objects referenced without one.
    (
        &regarding.uid,
        &regarding.kind,
        &regarding.namespace,
        &regarding.name,
    )
        .hash(&mut h);
    (note.warning, note.reason, note.action, note_text(note.note)).hash(&mut h);
    note.related
        .map(|r| (&r.uid, &r.kind, &r.namespace, &r.name))
        .hash(&mut h);
    h.finish()
}

/// Events published within the window: digest -> the `Event`'s name and series count.
#[derive(Default)]
struct Recent {
    entries: HashMap<u64, Published>,
    swept: Option<Instant>,
}

struct Published {
    name: Box<str>,
    count: i32,
    at: Instant,
}

impl Recent {
    /// The `Event` to raise and its next count, if `key` was published within the window.
    /// Sweeps out what the window has left behind, at most once per [`SWEEP_EVERY`].
    fn repeat_of(&mut self, key: u64, now: Instant) -> Option<(String, i32)> {
        if self
            .swept
            .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY)
        {
            self.entries
                .retain(|_, p| now.saturating_duration_since(p.at) < SERIES_WINDOW);
            self.swept = Some(now);
        }
        self.entries
            .get(&key)
            .filter(|p| now.saturating_duration_since(p.at) < SERIES_WINDOW)
            .map(|p| (p.name.to_string(), p.count.saturating_add(1)))
    }

    fn remember(&mut self, key: u64, name: String, count: i32, now: Instant) {
        self.entries.insert(
            key,
            Published {
                name: name.into_boxed_str(),
                count,
                at: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(uid: &str, name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("siths-operator.io/v1alpha1".into()),
            kind: Some("ServiceCertificate".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            ..Default::default()
        }
    }

    fn note<'a>(reason: &'a str, text: &'a str) -> Note<'a> {
        Note {
            warning: true,
            reason,
            action: "Reconcile",
            note: text,
            related: None,
        }
    }

    #[test]
    fn a_repeat_within_the_window_raises_the_series_of_the_first() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        let key = digest(&reference("u1", "a"), &note("SecretConflict", "first"));
        assert_eq!(recent.repeat_of(key, t0), None);
        recent.remember(key, "a.1".into(), 1, t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(recent.repeat_of(key, t1), Some(("a.1".into(), 2)));
        recent.remember(key, "a.1".into(), 2, t1);
        assert_eq!(
            recent.repeat_of(key, t1 + Duration::from_secs(1)),
            Some(("a.1".into(), 3))
        );
    }

    #[test]
    fn object_type_reason_note_and_related_object_make_an_event_new() {
        let r = reference("u1", "a");
        let same = digest(&r, &note("Refused", "one text"));
        assert_eq!(same, digest(&r, &note("Refused", "one text")));
        assert_ne!(same, digest(&r, &note("Refused", "another text")));
        assert_ne!(same, digest(&r, &note("Issued", "one text")));
        assert_ne!(
            same,
            digest(&reference("u2", "a"), &note("Refused", "one text"))
        );
        assert_ne!(
            same,
            digest(&reference("u1", "b"), &note("Refused", "one text"))
        );
        let normal = Note {
            warning: false,
            ..note("Refused", "one text")
        };
        assert_ne!(same, digest(&r, &normal));
        let other = reference("u9", "issuer");
        let related = Note {
            related: Some(&other),
            ..note("Refused", "one text")
        };
        assert_ne!(same, digest(&r, &related));
        // Notes that differ only past the 1 000 bytes published are the same event.
        let long = "x".repeat(1000);
        assert_eq!(
            digest(&r, &note("Refused", &format!("{long}a"))),
            digest(&r, &note("Refused", &format!("{long}b")))
        );
    }

    #[test]
    fn the_window_ends_a_series_and_old_events_are_swept_out() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        for i in 0..1000u64 {
            recent.remember(i, format!("e{i}"), 1, t0);
        }
        let late = t0 + SERIES_WINDOW + Duration::from_secs(1);
        // A repeat after the window is a new event, and the sweep forgets the rest.
        assert_eq!(recent.repeat_of(7, late), None);
        assert!(recent.entries.is_empty(), "{} left", recent.entries.len());
    }

    #[test]
    fn sweeps_run_at_most_once_a_minute() {
        let mut recent = Recent::default();
        let t0 = Instant::now();
        assert_eq!(recent.repeat_of(1, t0), None);
        recent.remember(1, "old".into(), 1, t0);
        let past = t0 + SERIES_WINDOW;
        recent.remember(2, "new".into(), 1, past);
        // 30 s after the last sweep: the expired entry stays in memory but is not a repeat.
        let soon = past + Duration::from_secs(30);
        recent.swept = Some(past);
        assert_eq!(recent.repeat_of(1, soon), None);
        assert_eq!(recent.entries.len(), 2);
        // A minute after: swept.
        assert_eq!(
            recent.repeat_of(2, past + SWEEP_EVERY),
            Some(("new".into(), 2))
        );
        assert_eq!(recent.entries.len(), 1);
    }
}
