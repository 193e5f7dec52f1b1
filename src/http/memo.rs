//! Rendered response bodies kept to be served again (hot reads answer without rendering):
//! each is kept with the store's change stamp of the moment its rows were about to be read,
//! and served only while the stamp is unchanged — any committed write (on any node, as the
//! store hears of it) retires every body. While the store's caches are not live (PostgreSQL
//! without its change listener) there is no stamp and nothing is kept.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Names a rendered read: what was read (`"v1 job"`…) and the ids and page that determine
/// its body, whoever asks (access is checked before a body is served).
pub type BodyKey = (&'static str, i64, i64);

/// The kept bodies, at most `capacity`, each for at most `ttl` (PostgreSQL: other nodes'
/// writes are heard, not seen).
pub struct Bodies {
    kept: Mutex<foldhash::HashMap<BodyKey, (u64, Instant, Bytes)>>,
    capacity: usize,
    ttl: Option<Duration>,
}

impl Bodies {
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Bodies { kept: Mutex::new(foldhash::HashMap::default()), capacity, ttl }
    }

    /// A memo for one read, asked for before its rows are read, with the store's change
    /// stamp then (`None`: nothing is kept).
    pub fn memo(&self, stamp: Option<u64>) -> Memo<'_> {
        Memo { bodies: self, stamp }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, foldhash::HashMap<BodyKey, (u64, Instant, Bytes)>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Bodies to serve again for one read (see the module's text).
pub struct Memo<'b> {
    bodies: &'b Bodies,
    stamp: Option<u64>,
}

impl Memo<'_> {
    /// The body kept for `key`, if it was rendered at the current stamp.
    pub fn kept(&self, key: &BodyKey) -> Option<Bytes> {
        let stamp = self.stamp?;
        let kept = self.bodies.kept();
        let (at, since, body) = kept.get(key)?;
        let fresh = self.bodies.ttl.is_none_or(|ttl| since.elapsed() < ttl);
        (*at == stamp && fresh).then(|| body.clone())
    }

    /// The body kept for `key`, or `render`'s — kept under the stamp of the memo's asking, so
    /// a body rendered across a change is never served again.
    pub fn or_render<E>(self, key: BodyKey, render: impl FnOnce() -> Result<Bytes, E>) -> Result<Bytes, E> {
        if let Some(body) = self.kept(&key) {
            return Ok(body);
        }
        let body = render()?;
        if let Some(stamp) = self.stamp {
            let mut kept = self.bodies.kept();
            if kept.len() >= self.bodies.capacity {
                kept.retain(|_, (at, _, _)| *at == stamp);
                if kept.len() >= self.bodies.capacity {
                    kept.clear();
                }
            }
            kept.insert(key, (stamp, Instant::now(), body.clone()));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_go_with_any_change_and_are_not_kept_across_one() {
        let bodies = Bodies::new(4, None);
        let key = ("v1 job", 7, 0);
        let render = |text: &'static str| move || Ok::<_, ()>(Bytes::from_static(text.as_bytes()));
        assert_eq!(bodies.memo(Some(1)).or_render(key, render("a")), Ok("a".into()));
        assert_eq!(bodies.memo(Some(1)).kept(&key), Some("a".into()), "kept");
        assert_eq!(bodies.memo(Some(1)).or_render(key, render("b")), Ok("a".into()), "served again");
        assert_eq!(bodies.memo(Some(2)).kept(&key), None, "any change retires every body");
        // Asked for at stamp 2; a change came (stamp 3) while the rows were read.
        let memo = bodies.memo(Some(2));
        assert_eq!(memo.or_render(key, render("stale")), Ok("stale".into()));
        assert_eq!(bodies.memo(Some(3)).kept(&key), None, "a body rendered across a change is not served");
        let _ = bodies.memo(None).or_render(key, render("a"));
        assert_eq!(bodies.memo(None).kept(&key), None, "nothing kept without a stamp");
        // Bounded: full of the current stamp's bodies, it starts over.
        for id in 0..10 {
            let _ = bodies.memo(Some(5)).or_render(("v1 job", id, 0), render("x"));
            assert!(bodies.kept().len() <= 4);
        }
        let aged = Bodies::new(4, Some(Duration::ZERO));
        let _ = aged.memo(Some(1)).or_render(key, render("a"));
        assert_eq!(aged.memo(Some(1)).kept(&key), None, "past its time to live");
    }
}
