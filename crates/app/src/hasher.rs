//! Password hashing on a fixed set of threads of its own.
//!
//! Each Argon2id computation works in ~19 MiB of memory blocks. On the blocking pool, hundreds
//! of registrations ran at once (5.8 GB). Bounded to two at a time, the resident size still
//! grew by ~17 MB per hash (the allocator did not give the freed blocks back: 300 MB after 20
//! registrations). Here a few threads of their own each keep one block buffer and hash into it
//! again and again: at most `threads` hashes at once, and `threads` × 19 MiB for good.

use crate::{AppError, AppResult};
use argon2::password_hash::{Output, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use rand::RngCore;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A thread's reusable Argon2 working memory.
type Blocks = Vec<Block>;
type Job = Box<dyn FnOnce(&mut Blocks) + Send>;

/// Stored hashes asking for more memory than this are refused rather than computed.
const MAX_BLOCKS: usize = 256 * 1024;

/// A queue of hashing work served by a fixed number of threads (they stop when it is dropped).
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Hasher {
    /// Starts `threads` hashing threads (at least one).
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let started = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut blocks = Blocks::new();
                    loop {
                        let next = queue
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        let Ok(job) = next else { return };
                        // A panicking job loses its own answer, not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&mut blocks);
                        }));
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Self { jobs }
    }

    /// An Argon2id PHC string of `password` with a fresh random salt and default parameters.
    pub async fn hash(&self, password: String) -> AppResult<String> {
        self.run(move |blocks| {
            let mut salt = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut salt);
            let params = Params::default();
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            compute(
                Algorithm::Argon2id,
                Version::V0x13,
                &params,
                &password,
                &salt,
                &mut out,
                blocks,
            )?;
            let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.into(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params).map_err(AppError::internal)?,
                salt: Some(salt.as_salt()),
                hash: Some(Output::new(&out).map_err(AppError::internal)?),
            };
            Ok(phc.to_string())
        })
        .await?
    }

    /// Whether `password` matches the PHC string `stored` (compared in constant time).
    pub async fn verify(&self, password: String, stored: String) -> AppResult<bool> {
        self.run(move |blocks| {
            let phc = PasswordHash::new(&stored).map_err(AppError::internal)?;
            let algorithm = Algorithm::try_from(phc.algorithm).map_err(AppError::internal)?;
            let version = phc
                .version
                .map(Version::try_from)
                .transpose()
                .map_err(AppError::internal)?
                .unwrap_or_default();
            let params = Params::try_from(&phc).map_err(AppError::internal)?;
            let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
                return Err(AppError::internal(
                    "stored password hash without salt or hash",
                ));
            };
            let mut salt_bytes = [0u8; 64];
            let salt = salt
                .decode_b64(&mut salt_bytes)
                .map_err(AppError::internal)?;
            let mut out = vec![0u8; expected.len()];
            compute(
                algorithm, version, &params, &password, salt, &mut out, blocks,
            )?;
            Ok(Output::new(&out).map_err(AppError::internal)? == expected)
        })
        .await?
    }

    /// Runs `work` with a thread's block buffer once a hashing thread is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Blocks) -> T + Send + 'static,
    ) -> AppResult<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |blocks: &mut Blocks| {
                let _ = answer.send(work(blocks));
            }))
            .map_err(|_| AppError::Unavailable("password hashing has stopped".into()))?;
        answered
            .await
            .map_err(|_| AppError::internal("password hashing failed"))
    }
}

/// One Argon2 computation into `out`, in `blocks` (grown to the parameters' size if needed).
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
    blocks: &mut Blocks,
) -> AppResult<()> {
    let needed = params.block_count();
    if needed > MAX_BLOCKS {
        return Err(AppError::internal(
            "stored password hash asks for too much memory",
        ));
    }
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut blocks[..needed])
        .map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn runs_at_most_as_many_at_once_as_threads() {
        let hasher = Arc::new(Hasher::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls = (0..12).map(|i| {
            let (hasher, running, most) = (hasher.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                hasher
                    .run(move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                    .await
            })
        });
        let answers: Vec<usize> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|a| a.unwrap().unwrap())
            .collect();
        assert_eq!(answers, (0..12).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let hasher = Hasher::new(1);
        assert!(hasher.run(|_| panic!("boom")).await.is_err());
        assert_eq!(hasher.run(|_| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn hashes_are_standard_argon2id_and_verify() {
        use argon2::password_hash::PasswordVerifier;
        let hasher = Hasher::new(1);
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        // The crate's own verifier agrees, both ways.
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            hasher
                .verify("correct horse".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong horse".into(), hash).await.unwrap());
        let theirs = {
            use argon2::password_hash::PasswordHasher;
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            Argon2::default()
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string()
        };
        assert!(hasher.verify("pw".into(), theirs).await.unwrap());
    }
}
