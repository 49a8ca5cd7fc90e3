//! Fixed-window rate limiting, in memory or in Redis (shared by every replica).

use crate::error::{AppError, AppResult};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// One window of a limit: at most `limit` hits per `period_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Hits allowed in one window.
    pub limit: u64,
    /// Window length in seconds.
    pub period_secs: u64,
}

impl Window {
    /// `limit` per minute.
    pub const fn per_minute(limit: u64) -> Self {
        Self {
            limit,
            period_secs: 60,
        }
    }

    /// `limit` per hour.
    pub const fn per_hour(limit: u64) -> Self {
        Self {
            limit,
            period_secs: 3600,
        }
    }
}

/// The verdict on one hit, reported for the most constraining window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the hit is within every window's limit.
    pub allowed: bool,
    /// Limit of the reported window.
    pub limit: u64,
    /// Hits left in the reported window.
    pub remaining: u64,
    /// Unix time (seconds) at which the reported window resets.
    pub reset_unix: u64,
}

impl Decision {
    /// The reset time as a timestamp.
    pub fn reset_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(i64::try_from(self.reset_unix).unwrap_or(i64::MAX), 0)
            .single()
            .unwrap_or_else(Utc::now)
    }

    /// `Err(RateLimited)` when the hit was refused.
    pub fn into_result(self) -> AppResult<Self> {
        if self.allowed {
            Ok(self)
        } else {
            Err(AppError::RateLimited {
                limit: self.limit,
                reset_at: self.reset_at(),
            })
        }
    }
}

/// Where counters are kept.
#[async_trait]
trait Counters: Send + Sync {
    /// Increments each key (creating it with `ttl_secs`) and returns the new counts.
    async fn increment(&self, keys: &[(String, u64)]) -> Result<Vec<u64>, String>;
    /// Decrements each existing key that is above zero.
    async fn decrement(&self, keys: &[(String, u64)]) -> Result<(), String>;
}

/// A rate limiter over configurable counters.
pub struct RateLimiter {
    counters: Box<dyn Counters>,
    backend: &'static str,
    namespace: String,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("backend", &self.backend)
            .finish()
    }
}

impl RateLimiter {
    /// Counters in this process's memory.
    pub fn in_memory() -> Self {
        Self {
            counters: Box::new(MemoryCounters::default()),
            backend: "memory",
            namespace: String::new(),
        }
    }

    /// Counters in Redis at `url`, shared by every process using the same server and
    /// `namespace`.
    pub async fn redis(url: &str, namespace: &str) -> AppResult<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| AppError::internal(format!("invalid rate_limit.redis_url: {e}")))?;
        let manager = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| AppError::Unavailable(format!("cannot reach Redis: {e}")))?;
        Ok(Self {
            counters: Box::new(RedisCounters { manager }),
            backend: "redis",
            namespace: namespace.to_owned(),
        })
    }

    /// `memory` or `redis`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Counts one hit on `key` against every window.
    pub async fn hit(&self, key: &str, windows: &[Window]) -> Decision {
        let now = unix_now();
        let keys = self.window_keys(key, windows, now);
        let counts = self
            .counters
            .increment(&keys)
            .await
            .unwrap_or_else(|error| {
                // Failing open keeps the platform usable when Redis blips; it is logged loudly.
                tracing::error!(%error, backend = self.backend, "rate-limit counters unavailable");
                vec![0; windows.len()]
            });
        decide(windows, &counts, now)
    }

    /// Takes back one hit on `key` counted by [`RateLimiter::hit`] in the current windows
    /// (an attempt that turned out not to count, e.g. a successful login).
    pub async fn refund(&self, key: &str, windows: &[Window]) {
        let keys = self.window_keys(key, windows, unix_now());
        if let Err(error) = self.counters.decrement(&keys).await {
            tracing::error!(%error, backend = self.backend, "rate-limit counters unavailable");
        }
    }

    fn window_keys(&self, key: &str, windows: &[Window], now: u64) -> Vec<(String, u64)> {
        windows
            .iter()
            .map(|w| {
                let index = now / w.period_secs;
                let name = format!("{}:rl:{key}:{}:{index}", self.namespace, w.period_secs);
                (name, w.period_secs)
            })
            .collect()
    }
}

fn decide(windows: &[Window], counts: &[u64], now: u64) -> Decision {
    windows
        .iter()
        .zip(counts)
        .map(|(w, &used)| Decision {
            allowed: used <= w.limit,
            limit: w.limit,
            remaining: w.limit.saturating_sub(used),
            reset_unix: (now / w.period_secs + 1) * w.period_secs,
        })
        // An exhausted window wins; otherwise the one with the fewest hits left.
        .min_by_key(|d| (d.allowed, d.remaining))
        .unwrap_or(Decision {
            allowed: true,
            limit: 0,
            remaining: 0,
            reset_unix: now,
        })
}

fn unix_now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

#[derive(Default)]
struct MemoryCounters {
    // key → (count, expires at unix seconds)
    map: Mutex<HashMap<String, (u64, u64)>>,
}

impl MemoryCounters {
    fn with_map<T>(&self, f: impl FnOnce(&mut HashMap<String, (u64, u64)>) -> T) -> T {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut map)
    }
}

#[async_trait]
impl Counters for MemoryCounters {
    async fn increment(&self, keys: &[(String, u64)]) -> Result<Vec<u64>, String> {
        let now = unix_now();
        Ok(self.with_map(|map| {
            if map.len() > 100_000 {
                map.retain(|_, (_, expires)| *expires > now);
            }
            keys.iter()
                .map(|(key, ttl)| {
                    let entry = map.entry(key.clone()).or_insert((0, now + ttl));
                    if entry.1 <= now {
                        *entry = (0, now + ttl);
                    }
                    entry.0 += 1;
                    entry.0
                })
                .collect()
        }))
    }

    async fn decrement(&self, keys: &[(String, u64)]) -> Result<(), String> {
        self.with_map(|map| {
            for (key, _) in keys {
                if let Some((count, _)) = map.get_mut(key) {
                    *count = count.saturating_sub(1);
                }
            }
        });
        Ok(())
    }
}

struct RedisCounters {
    manager: redis::aio::ConnectionManager,
}

// INCR every key, giving new keys their TTL, in one round trip and atomically.
const INCREMENT_SCRIPT: &str = r"
local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  counts[i] = n
end
return counts
";

// DECR keys that exist and are above zero (a refund never creates a key or goes negative).
const DECREMENT_SCRIPT: &str = r"
for _, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n > 0 then redis.call('DECR', key) end
end
return 0
";

#[async_trait]
impl Counters for RedisCounters {
    async fn increment(&self, keys: &[(String, u64)]) -> Result<Vec<u64>, String> {
        let script = redis::Script::new(INCREMENT_SCRIPT);
        let mut invocation = script.prepare_invoke();
        for (key, ttl) in keys {
            invocation.key(key).arg(ttl);
        }
        let mut conn = self.manager.clone();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    async fn decrement(&self, keys: &[(String, u64)]) -> Result<(), String> {
        let script = redis::Script::new(DECREMENT_SCRIPT);
        let mut invocation = script.prepare_invoke();
        for (key, _) in keys {
            invocation.key(key);
        }
        let mut conn = self.manager.clone();
        invocation
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_reports_tightest_window() {
        let windows = [Window::per_minute(60), Window::per_hour(1000)];
        let d = decide(&windows, &[10, 995], 120);
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining, d.reset_unix), (1000, 5, 3600));
        let d = decide(&windows, &[61, 100], 120);
        assert!(!d.allowed);
        assert_eq!((d.limit, d.remaining, d.reset_unix), (60, 0, 180));
    }

    async fn exercise(limiter: &RateLimiter) {
        let key = format!("test:{}", domain::IdKind::Request.new_id());
        let windows = [Window::per_minute(3), Window::per_hour(100)];
        for expected_remaining in [2, 1, 0] {
            let d = limiter.hit(&key, &windows).await;
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
            assert_eq!(d.limit, 3);
        }
        let refused = limiter.hit(&key, &windows).await;
        assert!(!refused.allowed);
        assert!(refused.reset_at() > Utc::now());
        let fresh = format!("test:{}", domain::IdKind::Request.new_id());
        assert!(limiter.hit(&fresh, &windows).await.allowed);
        // A refund gives one hit back, never more than were counted.
        let key = format!("test:{}", domain::IdKind::Request.new_id());
        limiter.refund(&key, &windows).await;
        assert_eq!(limiter.hit(&key, &windows).await.remaining, 2);
        limiter.refund(&key, &windows).await;
        limiter.refund(&key, &windows).await;
        assert_eq!(limiter.hit(&key, &windows).await.remaining, 2);
    }

    #[tokio::test]
    async fn memory_counters_limit() {
        exercise(&RateLimiter::in_memory()).await;
    }

    /// Runs against the real Redis when `VISION_TEST_REDIS_URL` is set; two limiters on one
    /// server share their counters like two replicas would.
    #[tokio::test]
    async fn redis_counters_limit_and_are_shared() {
        let Ok(url) = std::env::var("VISION_TEST_REDIS_URL") else {
            eprintln!("VISION_TEST_REDIS_URL not set: Redis test skipped");
            return;
        };
        let a = RateLimiter::redis(&url, "test").await.unwrap();
        exercise(&a).await;
        let b = RateLimiter::redis(&url, "test").await.unwrap();
        let key = format!("test:{}", domain::IdKind::Request.new_id());
        let windows = [Window::per_minute(2)];
        assert!(a.hit(&key, &windows).await.allowed);
        assert!(b.hit(&key, &windows).await.allowed);
        assert!(
            !a.hit(&key, &windows).await.allowed,
            "replicas must share counters"
        );
    }
}
