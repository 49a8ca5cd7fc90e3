//! Who the client is: the TCP peer, or the address a trusted reverse proxy reports in
//! `X-Forwarded-For`.

use std::net::IpAddr;

/// An address range written `addr/prefix` (or a bare address, a range of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `10.0.0.0/8`, `fd00::/8`, `192.168.1.7`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("\"{text}\" is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{text}\": prefix must be 0–{max}"))?,
        };
        Ok(Self { network, prefix })
    }

    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4 form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.network), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits.saturating_sub(prefix.min(bits)));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses the configured list; an entry that is not an address or range is an error.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let nets = entries
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| IpNet::parse(e))
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }

    /// The client of a request from `peer` carrying the given `X-Forwarded-For` header values
    /// (in order). Only when the peer is a trusted proxy is the header read, right to left,
    /// skipping trusted proxies: the first other address is the client. A malformed entry
    /// stops the walk at the last address known good, so a client cannot choose its own
    /// address by sending garbage.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let hops = forwarded_for
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(','))
            .map(str::trim);
        for hop in hops {
            let Some(ip) = parse_hop(hop) else { break };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

// Entries are addresses, possibly bracketed IPv6 or with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn ranges_parse_and_contain() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.3.4")));
        assert!(net.contains(ip("::ffff:10.1.1.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(IpNet::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("1.2.3.4").unwrap().contains(ip("1.2.3.4")));
        assert!(!IpNet::parse("1.2.3.4").unwrap().contains(ip("1.2.3.5")));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("203.0.113.9"), &["1.1.1.1"]),
            ip("203.0.113.9")
        );
        let lb = proxies(&["10.0.0.0/8"]);
        // An untrusted peer cannot pick its address.
        assert_eq!(
            lb.client(ip("203.0.113.9"), &["1.1.1.1"]),
            ip("203.0.113.9")
        );
        // Behind the proxy: the right-most untrusted hop, not what the client prepended.
        assert_eq!(
            lb.client(ip("10.0.0.2"), &["6.6.6.6, 198.51.100.7, 10.0.0.5"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            lb.client(ip("10.0.0.2"), &["6.6.6.6", "198.51.100.7:4711"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            lb.client(ip("10.0.0.2"), &["[2001:db8::1]:80"]),
            ip("2001:db8::1")
        );
        // Garbage stops the walk at the last good address; no header leaves the proxy.
        assert_eq!(
            lb.client(ip("10.0.0.2"), &["1.1.1.1, junk"]),
            ip("10.0.0.2")
        );
        assert_eq!(lb.client(ip("10.0.0.2"), &[]), ip("10.0.0.2"));
        assert!(TrustedProxies::parse(&["nonsense".into()]).is_err());
    }

    proptest! {
        #[test]
        fn a_range_contains_exactly_its_prefix(a: u32, b: u32, prefix in 0u8..=32) {
            let net = IpNet::parse(&format!("{}/{prefix}", std::net::Ipv4Addr::from(a))).unwrap();
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            prop_assert_eq!(
                net.contains(IpAddr::V4(b.into())),
                a & mask == b & mask
            );
        }

        #[test]
        fn forwarded_for_never_panics(header in ".{0,64}", peer: u32) {
            let lb = proxies(&["0.0.0.0/0"]);
            let _ = lb.client(IpAddr::V4(peer.into()), &[header.as_str()]);
        }
    }
}
