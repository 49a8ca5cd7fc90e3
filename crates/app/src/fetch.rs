//! Downloading user-supplied image URLs safely: http(s) only, public addresses only (unless
//! configured), every redirect hop checked again, bounded in time and size.

use crate::settings::InferenceSettings;
use crate::{AppError, AppResult};
use futures::StreamExt;
use std::net::IpAddr;
use std::time::Duration;

fn refused(url: &str, reason: impl Into<String>) -> AppError {
    AppError::invalid_field("image_url", format!("{url}: {}", reason.into()))
}

/// Whether `ip` is reachable only inside a private network or this host.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // 100.64.0.0/10, carrier-grade NAT
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// Checks scheme and host of `url`; resolves the host and refuses private addresses unless
/// allowed.
async fn check(url: &reqwest::Url, settings: &InferenceSettings) -> AppResult<()> {
    let text = url.as_str();
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused(text, "only http and https URLs are fetched"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| refused(text, "the URL has no host"))?;
    if settings.allow_private_urls {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| refused(text, format!("cannot resolve the host: {e}")))?
        .map(|a| a.ip())
        .collect();
    if addresses.is_empty() {
        return Err(refused(text, "the host has no address"));
    }
    if addresses.iter().any(|ip| is_private(*ip)) {
        return Err(refused(
            text,
            "private, loopback and link-local addresses are not fetched",
        ));
    }
    Ok(())
}

/// Refuses, before anything is queued, a URL that [`download`] would refuse at its first hop.
pub async fn check_url(url: &str, settings: &InferenceSettings) -> AppResult<()> {
    let parsed = reqwest::Url::parse(url).map_err(|e| refused(url, format!("not a URL: {e}")))?;
    check(&parsed, settings).await
}

/// Downloads `url` (following at most `max_redirects` checked redirects) into memory.
pub async fn download(url: &str, settings: &InferenceSettings) -> AppResult<Vec<u8>> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(settings.fetch_timeout_secs.max(1)))
        .build()
        .map_err(AppError::internal)?;
    let mut current =
        reqwest::Url::parse(url).map_err(|e| refused(url, format!("not a URL: {e}")))?;
    for _ in 0..=settings.max_redirects {
        check(&current, settings).await?;
        let response = client
            .get(current.clone())
            .send()
            .await
            .map_err(|e| refused(current.as_str(), format!("download failed: {e}")))?;
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

    #[test]
    fn private_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
