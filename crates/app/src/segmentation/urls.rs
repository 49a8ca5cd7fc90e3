//! Signed, expiring URLs for segmentation images and masks, served by the platform itself
//! (`GET /api/v1/files/{kind}/{id}?expires=…&signature=…`) on any object storage backend.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Path prefix of file URLs.
pub const FILES_PREFIX: &str = "/api/v1/files/";

/// What a file URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// An uploaded image (`id` = image id).
    Image,
    /// The mask PNG of a result (`id` = result id).
    Mask,
}

impl FileKind {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Image => "images",
            FileKind::Mask => "masks",
        }
    }

    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "images" => Some(FileKind::Image),
            "masks" => Some(FileKind::Mask),
            _ => None,
        }
    }
}

/// Signs and verifies file URLs with a key derived from the platform secret.
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner { .. }")
    }
}

impl UrlSigner {
    /// A signer whose key is derived from `secret` (so it differs from the JWT key).
    pub fn new(secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"vision-file-urls\0");
        hasher.update(secret);
        Self {
            key: hasher.finalize().into(),
        }
    }

    fn mac(&self, subject: &str, expires: i64) -> HmacSha256 {
        // A 32-byte key is always accepted.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{subject}:{expires}").as_bytes());
        mac
    }

    /// The hex signature of `subject` (any string naming what the link grants) until `expires`.
    pub fn sign(&self, subject: &str, expires: i64) -> String {
        hex::encode(self.mac(subject, expires).finalize().into_bytes())
    }

    /// Whether `signature` is valid for `subject` and `expires` is not before `now` (Unix
    /// seconds). The comparison is constant-time.
    pub fn verify_subject(&self, subject: &str, expires: i64, signature: &str, now: i64) -> bool {
        let Ok(bytes) = hex::decode(signature) else {
            return false;
        };
        expires >= now && self.mac(subject, expires).verify_slice(&bytes).is_ok()
    }

    /// `{base}/api/v1/files/{kind}/{id}?expires={unix}&signature={hex}`.
    pub fn url(&self, base: &str, kind: FileKind, id: &str, expires: i64) -> String {
        let signature = self.sign(&format!("{}/{id}", kind.as_str()), expires);
        format!(
            "{}{FILES_PREFIX}{}/{id}?expires={expires}&signature={signature}",
            base.trim_end_matches('/'),
            kind.as_str()
        )
    }

    /// Whether `signature` is valid for the file and `expires` is not before `now` (Unix
    /// seconds). The comparison is constant-time.
    pub fn verify(
        &self,
        kind: FileKind,
        id: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> bool {
        self.verify_subject(&format!("{}/{id}", kind.as_str()), expires, signature, now)
    }
}

/// The file a platform file URL points at, whatever its host and query (`None` for any other
/// URL). Callers check ownership: the URL itself proves nothing.
pub fn own_file(url: &str) -> Option<(FileKind, String)> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let (kind, id) = parsed.path().strip_prefix(FILES_PREFIX)?.split_once('/')?;
    let valid_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid_id {
        return None;
    }
    Some((FileKind::parse(kind)?, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signs_and_verifies() {
        let signer = UrlSigner::new(b"secret");
        let url = signer.url("http://h:1/", FileKind::Image, "abc-1", 100);
        assert!(url.starts_with("http://h:1/api/v1/files/images/abc-1?expires=100&signature="));
        let signature = url.rsplit('=').next().unwrap();
        assert!(signer.verify(FileKind::Image, "abc-1", 100, signature, 100));
        assert!(
            !signer.verify(FileKind::Image, "abc-1", 100, signature, 101),
            "expired"
        );
        assert!(
            !signer.verify(FileKind::Mask, "abc-1", 100, signature, 0),
            "other kind"
        );
        assert!(
            !signer.verify(FileKind::Image, "abc-2", 100, signature, 0),
            "other id"
        );
        assert!(
            !signer.verify(FileKind::Image, "abc-1", 101, signature, 0),
            "other expiry"
        );
        assert!(!UrlSigner::new(b"other").verify(FileKind::Image, "abc-1", 100, signature, 0));
        assert!(
            !signer.verify(FileKind::Image, "abc-1", 100, "zz", 0),
            "not hex"
        );
    }

    #[test]
    fn recognises_own_urls() {
        assert_eq!(
            own_file("http://127.0.0.1:8000/api/v1/files/images/ab-12?expires=1&signature=x"),
            Some((FileKind::Image, "ab-12".to_owned()))
        );
        assert_eq!(
            own_file("https://cdn.example/api/v1/files/masks/cd"),
            Some((FileKind::Mask, "cd".to_owned()))
        );
        assert_eq!(own_file("http://h/api/v1/files/other/ab"), None);
        assert_eq!(own_file("http://h/api/v1/files/images/a/b"), None);
        assert_eq!(own_file("http://h/api/v1/files/images/"), None);
        assert_eq!(own_file("http://h/images/ab"), None);
        assert_eq!(own_file("not a url"), None);
    }

    proptest! {
        #[test]
        fn own_file_never_panics_and_round_trips(url in ".{0,80}", id in "[a-f0-9-]{1,36}") {
            let _ = own_file(&url);
            let signer = UrlSigner::new(b"k");
            let signed = signer.url("http://x", FileKind::Mask, &id, 5);
            prop_assert_eq!(own_file(&signed), Some((FileKind::Mask, id)));
        }
    }
}
