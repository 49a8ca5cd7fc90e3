//! Downloading user-supplied image URLs safely: http(s) only, public addresses only (unless
//! configured), every redirect hop checked again, bounded in time and size.
//!
//! A host name is resolved exactly once per hop, by the HTTP client's own resolver
//! ([`CheckedResolver`]): it refuses the whole answer when any address in it is not globally
//! reachable, and the client connects only to the addresses it returned. A second lookup between
//! a check and the connect (which DNS rebinding exploits) therefore never happens. Literal IP
//! hosts bypass resolvers, so they are checked before the request. Proxies from the environment
//! are not used: a proxy would resolve the name again, out of our sight.

use crate::settings::InferenceSettings;
use crate::{AppError, AppResult};
use futures::StreamExt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

fn refused(url: &str, reason: impl Into<String>) -> AppError {
    AppError::invalid_field("image_url", format!("{url}: {}", reason.into()))
}

/// IPv4 blocks refused: every block of the IANA IPv4 Special-Purpose Address Registry that is
/// not globally reachable, plus multicast, the reserved 240/4 (with the limited broadcast) and
/// the Azure wire server. 192.0.0.0/24 is refused whole: its two globally reachable anycast
/// addresses (192.0.0.9, 192.0.0.10) are protocol services, never image hosts.
const REFUSED_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),        // "this network" (RFC 791)
    ([10, 0, 0, 0], 8),       // private (RFC 1918)
    ([100, 64, 0, 0], 10),    // shared address space, carrier-grade NAT (RFC 6598)
    ([127, 0, 0, 0], 8),      // loopback
    ([169, 254, 0, 0], 16),   // link local, where cloud metadata services answer
    ([172, 16, 0, 0], 12),    // private
    ([192, 0, 0, 0], 24),     // IETF protocol assignments (RFC 6890), Oracle metadata
    ([192, 0, 2, 0], 24),     // documentation TEST-NET-1
    ([192, 88, 99, 0], 24),   // deprecated 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16),   // private
    ([198, 18, 0, 0], 15),    // benchmarking (RFC 2544)
    ([198, 51, 100, 0], 24),  // documentation TEST-NET-2
    ([203, 0, 113, 0], 24),   // documentation TEST-NET-3
    ([224, 0, 0, 0], 4),      // multicast
    ([240, 0, 0, 0], 4),      // reserved, and 255.255.255.255 limited broadcast
    ([168, 63, 129, 16], 32), // Azure wire server / host metadata (not IANA, but internal)
];

/// IPv6 blocks refused inside global unicast 2000::/3 (everything outside it is refused, see
/// [`is_private`]). 2001::/23 is refused whole, Teredo (2001::/32) included: its few globally
/// reachable entries are anycast services and ORCHID identifiers, never image hosts.
const REFUSED_V6: &[(u128, u32)] = &[
    (0x2001_0000 << 96, 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID…
    (0x2001_0db8 << 96, 32), // documentation
    (0x3fff_0000 << 96, 20), // documentation (RFC 9637)
];

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from_be_bytes(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    u128::from(ip) & mask == net & mask
}

/// Whether `ip` must not be fetched: it is not globally reachable per the IANA IPv4 and IPv6
/// Special-Purpose Address Registries (private, loopback, link-local, shared, documentation,
/// benchmarking, reserved, multicast…). Addresses that carry an IPv4 address — IPv4-mapped
/// (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) — are judged by that IPv4
/// address; other forms that reach an IPv4 host (IPv4-compatible `::/96`, the local-use NAT64
/// `64:ff9b:1::/48`, Teredo) are refused whatever they embed.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => REFUSED_V4.iter().any(|(net, len)| in_v4(v4, *net, *len)),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            if in_v6(v6, 0x0064_ff9b << 96, 96) {
                return is_private(IpAddr::V4(Ipv4Addr::from(bits as u32)));
            }
            if in_v6(v6, 0x2002 << 112, 16) {
                return is_private(IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32)));
            }
            // Only 2000::/3 is allocated as global unicast; the rest is loopback, unspecified,
            // IPv4-compatible, discard-only, local NAT64, SRv6, unique-local, link-local,
            // site-local, multicast or unassigned.
            !in_v6(v6, 0x2 << 124, 3) || REFUSED_V6.iter().any(|(net, len)| in_v6(v6, *net, *len))
        }
    }
}

/// Why a host is not fetched from.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("cannot resolve the host: {0}")]
    Resolve(io::Error),
    #[error("the host has no address")]
    NoAddress,
    #[error(
        "{0} is a private, loopback, link-local or other special-purpose address; \
         only public addresses are fetched"
    )]
    NotPublic(IpAddr),
}

type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// How host names become addresses: the system resolver, or a scripted one in tests.
trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> LookupFuture;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread).
struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// Resolves `host` once; the answer only if every address in it may be fetched from. An answer
/// mixing public and private addresses is refused as a whole rather than filtered: it is what
/// a rebinding attacker serves, and no honest image host needs it.
async fn checked_addresses(
    lookup: &dyn Lookup,
    host: &str,
    allow_private: bool,
) -> Result<Vec<IpAddr>, Refusal> {
    let addresses = lookup.lookup(host).await.map_err(Refusal::Resolve)?;
    if addresses.is_empty() {
        return Err(Refusal::NoAddress);
    }
    if !allow_private && let Some(ip) = addresses.iter().find(|ip| is_private(**ip)) {
        return Err(Refusal::NotPublic(*ip));
    }
    Ok(addresses)
}

/// The download client's resolver: the only lookup of a hop, so the client connects to exactly
/// the addresses that passed the check.
struct CheckedResolver {
    lookup: Arc<dyn Lookup>,
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = self.lookup.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses = checked_addresses(&*lookup, name.as_str(), allow_private).await?;
            // Port 0: the client puts in the URL's port.
            let addrs: reqwest::dns::Addrs =
                Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A checked URL's host: a literal address (already checked) or a name still to resolve.
enum Host<'a> {
    Address,
    Name(&'a str),
}

/// Checks scheme and host of `url`, and a literal IP host's address; names are left to the
/// caller's single resolution.
fn check_target<'a>(url: &'a reqwest::Url, allow_private: bool) -> AppResult<Host<'a>> {
    let text = url.as_str();
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused(text, "only http and https URLs are fetched"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| refused(text, "the URL has no host"))?;
    // The URL parser has normalised IPv4 spellings (`0x7f.1`, `2130706433`) to dotted quads.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) if !allow_private && is_private(ip) => {
            Err(refused(text, Refusal::NotPublic(ip).to_string()))
        }
        Ok(_) => Ok(Host::Address),
        Err(_) => Ok(Host::Name(host)),
    }
}

/// The refusal behind a failed request, if the resolver refused.
fn refusal_in(error: &reqwest::Error) -> Option<&Refusal> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        source = e.source();
    }
    None
}

/// Refuses, before anything is queued, a URL that [`download`] would refuse at its first hop.
/// (This early answer costs a lookup of its own; the download does not rely on it.)
pub async fn check_url(url: &str, settings: &InferenceSettings) -> AppResult<()> {
    check_url_with(&SystemLookup, url, settings).await
}

async fn check_url_with(
    lookup: &dyn Lookup,
    url: &str,
    settings: &InferenceSettings,
) -> AppResult<()> {
    let parsed = reqwest::Url::parse(url).map_err(|e| refused(url, format!("not a URL: {e}")))?;
    let allow_private = settings.allow_private_urls;
    if let Host::Name(host) = check_target(&parsed, allow_private)? {
        checked_addresses(lookup, host, allow_private)
            .await
            .map_err(|e| refused(url, e.to_string()))?;
    }
    Ok(())
}

/// Downloads `url` (following at most `max_redirects` checked redirects) into memory.
pub async fn download(url: &str, settings: &InferenceSettings) -> AppResult<Vec<u8>> {
    download_with(Arc::new(SystemLookup), url, settings).await
}

async fn download_with(
    lookup: Arc<dyn Lookup>,
    url: &str,
    settings: &InferenceSettings,
) -> AppResult<Vec<u8>> {
    let allow_private = settings.allow_private_urls;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver {
            lookup,
            allow_private,
        }))
        .timeout(Duration::from_secs(settings.fetch_timeout_secs.max(1)))
        .build()
        .map_err(AppError::internal)?;
    let mut current =
        reqwest::Url::parse(url).map_err(|e| refused(url, format!("not a URL: {e}")))?;
    for _ in 0..=settings.max_redirects {
        check_target(&current, allow_private)?;
        let response = client.get(current.clone()).send().await.map_err(|e| {
            let reason = match refusal_in(&e) {
                Some(refusal) => refusal.to_string(),
                None => format!("download failed: {e}"),
            };
            refused(current.as_str(), reason)
        })?;
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| refused(current.as_str(), "redirect without a location"))?;
            current = current
                .join(location)
                .map_err(|e| refused(location, format!("bad redirect: {e}")))?;
            continue;
        }
        if !response.status().is_success() {
            return Err(refused(
                current.as_str(),
                format!("the server answered {}", response.status()),
            ));
        }
        let limit = settings.max_image_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(AppError::PayloadTooLarge { limit_bytes: limit });
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| refused(current.as_str(), format!("download failed: {e}")))?;
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(AppError::PayloadTooLarge { limit_bytes: limit });
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(body);
    }
    Err(refused(
        url,
        format!("more than {} redirects", settings.max_redirects),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_purpose_addresses_are_refused() {
        for text in [
            // IPv4 special-purpose registry, not globally reachable
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.0.170",
            "192.0.0.192",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.254",
            "255.255.255.255",
            "168.63.129.16",
            // IPv6
            "::",
            "::1",
            "::127.0.0.1", // IPv4-compatible
            "::8.8.8.8",   // IPv4-compatible, deprecated: never routed
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:7f00:1", // SIIT IPv4-translated
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "64:ff9b::192.168.0.1",
            "64:ff9b:1::8.8.8.8", // local-use NAT64
            "100::1",             // discard-only
            "2001::1",            // Teredo
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",   // benchmarking
            "2001:10::1",  // deprecated ORCHID
            "2001:db8::1", // documentation
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::1",
            "2002:a00:1::",
            "3fff::1",
            "5f00::1", // SRv6 SIDs
            "fc00::1",
            "fd00:ec2::254", // AWS metadata over IPv6
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(is_private(ip(text)), "{text} must be refused");
        }
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.0.3.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "168.63.129.17",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(!is_private(ip(text)), "{text} is public");
        }
    }

    fn refused_v4() -> impl Strategy<Value = Ipv4Addr> {
        (0..REFUSED_V4.len(), any::<u32>()).prop_map(|(i, host)| {
            let (net, len) = REFUSED_V4[i];
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            Ipv4Addr::from((u32::from_be_bytes(net) & mask) | (host & !mask))
        })
    }

    /// The IPv6 forms that carry `v4`: mapped, NAT64 well-known prefix, 6to4.
    fn carriers(v4: Ipv4Addr, tail: u64) -> [Ipv6Addr; 3] {
        let v4 = u128::from(u32::from(v4));
        [
            Ipv6Addr::from((0xffff << 32) | v4),
            Ipv6Addr::from((0x0064_ff9b << 96) | v4),
            Ipv6Addr::from((0x2002 << 112) | (v4 << 80) | u128::from(tail & 0xffff_ffff_ffff)),
        ]
    }

    proptest! {
        #[test]
        fn every_address_of_a_refused_block_is_refused(v4 in refused_v4(), tail in any::<u64>()) {
            prop_assert!(is_private(IpAddr::V4(v4)));
            for v6 in carriers(v4, tail) {
                prop_assert!(is_private(IpAddr::V6(v6)), "{v6} carries {v4}");
            }
        }

        #[test]
        fn embedded_ipv4_decides(v4 in any::<u32>(), tail in any::<u64>()) {
            let v4 = Ipv4Addr::from(v4);
            let verdict = is_private(IpAddr::V4(v4));
            for v6 in carriers(v4, tail) {
                prop_assert_eq!(is_private(IpAddr::V6(v6)), verdict, "{} carries {}", v6, v4);
            }
            // Forms that reach an IPv4 host without being judged by it are always refused.
            let bits = u128::from(u32::from(v4));
            let compatible = Ipv6Addr::from(bits);
            let local_nat64 = Ipv6Addr::from((0x0064_ff9b_0001 << 80) | bits);
            let teredo = Ipv6Addr::from((0x2001_0000 << 96) | (u128::from(tail) << 32) | bits);
            for v6 in [compatible, local_nat64, teredo] {
                prop_assert!(is_private(IpAddr::V6(v6)), "{}", v6);
            }
        }
    }

    fn settings(allow_private_urls: bool) -> InferenceSettings {
        let mut settings = crate::Settings::defaults().unwrap().inference;
        settings.allow_private_urls = allow_private_urls;
        settings
    }

    /// Answers from a script per host name (falling back to the system resolver) and counts the
    /// lookups of every name.
    #[derive(Default)]
    struct ScriptedLookup {
        answers: Mutex<HashMap<String, Vec<Vec<IpAddr>>>>,
        calls: Mutex<HashMap<String, usize>>,
    }

    impl ScriptedLookup {
        /// `host` answers `answers[0]` first, then the next, the last one for good.
        fn answer(self, host: &str, answers: &[&[&str]]) -> Self {
            let answers = answers
                .iter()
                .map(|a| a.iter().map(|t| ip(t)).collect())
                .collect();
            self.answers.lock().unwrap().insert(host.into(), answers);
            self
        }

        fn calls(&self, host: &str) -> usize {
            self.calls.lock().unwrap().get(host).copied().unwrap_or(0)
        }
    }

    impl Lookup for ScriptedLookup {
        fn lookup(&self, host: &str) -> LookupFuture {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                let n = calls.entry(host.to_owned()).or_default();
                *n += 1;
                *n
            };
            let scripted = self
                .answers
                .lock()
                .unwrap()
                .get(host)
                .map(|answers| answers[(n - 1).min(answers.len() - 1)].clone());
            match scripted {
                Some(answer) => Box::pin(async move { Ok(answer) }),
                None => SystemLookup.lookup(host),
            }
        }
    }

    /// A loopback HTTP server answering `responses` in turn (the last one for good), one request
    /// per connection; counts the TCP connections it accepted.
    async fn server(responses: Vec<String>) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let response = responses[n.min(responses.len() - 1)].clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        (port, accepted)
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn redirect(to: &str) -> String {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }

    /// DNS rebinding: the name's first answer is public, so the early check passes; the next
    /// answer is the real one, loopback. The download resolves once, through the check, and so
    /// never connects to the loopback server although the name really points there.
    #[tokio::test]
    async fn rebinding_to_loopback_is_refused_at_connect() {
        let (port, accepted) = server(vec![ok("secret")]).await;
        let lookup = Arc::new(
            ScriptedLookup::default().answer("localhost", &[&["8.8.8.8"], &["127.0.0.1"]]),
        );
        let url = format!("http://localhost:{port}/latest/meta-data");
        let settings = settings(false);

        check_url_with(&*lookup, &url, &settings).await.unwrap();
        let error = download_with(lookup.clone(), &url, &settings)
            .await
            .unwrap_err();
        // The reason is in the error's details.
        let error = format!("{error:?}");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            0,
            "no connection to loopback"
        );
        assert!(error.contains("127.0.0.1"), "{error}");
        assert_eq!(
            lookup.calls("localhost"),
            2,
            "one lookup for the check, one for the hop"
        );

        // A mixed answer is refused whole, not filtered down to its public half.
        let lookup =
            Arc::new(ScriptedLookup::default().answer("localhost", &[&["8.8.8.8", "127.0.0.1"]]));
        assert!(download_with(lookup, &url, &settings).await.is_err());
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    /// Every hop is resolved exactly once, by the client's resolver, and the client connects to
    /// what that lookup answered (the names exist nowhere else).
    #[tokio::test]
    async fn every_hop_is_resolved_once_and_connected_to_as_answered() {
        let (target_port, target_hits) = server(vec![ok("image bytes")]).await;
        let (port, hits) = server(vec![redirect(&format!(
            "http://cdn.images.invalid:{target_port}/b.png"
        ))])
        .await;
        let lookup = Arc::new(
            ScriptedLookup::default()
                .answer("images.invalid", &[&["127.0.0.1"]])
                .answer("cdn.images.invalid", &[&["127.0.0.1"]]),
        );
        let body = download_with(
            lookup.clone(),
            &format!("http://images.invalid:{port}/a.png"),
            &settings(true),
        )
        .await
        .unwrap();
        assert_eq!(body, b"image bytes");
        assert_eq!(lookup.calls("images.invalid"), 1);
        assert_eq!(lookup.calls("cdn.images.invalid"), 1);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(target_hits.load(Ordering::SeqCst), 1);
    }

    /// Literal addresses skip resolvers, so they are checked before the request, whatever
    /// spelling the URL uses.
    #[tokio::test]
    async fn literal_private_addresses_are_refused() {
        let (port, accepted) = server(vec![ok("secret")]).await;
        let settings = settings(false);
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://0x7f.1:{port}/"),
            format!("http://2130706433:{port}/"),
            format!("http://localhost:{port}/"),
        ] {
            assert!(check_url(&url, &settings).await.is_err(), "{url}");
            assert!(download(&url, &settings).await.is_err(), "{url}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
        // Allowed, the same server is reached.
        let url = format!("http://localhost:{port}/");
        assert_eq!(
            download(&url, &self::settings(true)).await.unwrap(),
            b"secret"
        );
    }
}
