//! Safe webhook targets: `https` off loopback, and no private, loopback or
//! link-local address unless the operator allows them (`keydeck serve
//! --webhooks-allow-private`). The address checked is the one connected to:
//! names go through [`SafeResolver`], which drops the addresses refused, so a
//! name that resolves elsewhere at send time (DNS rebinding) is refused too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// How long an attempt may take in all (connect, send, answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an answer's body is read (then dropped; never logged).
pub const MAX_ANSWER_BYTES: usize = 4096;

/// What the flag allows.
const ALLOW_FLAG: &str = "keydeck serve --webhooks-allow-private";

/// Whether the service may connect to `ip`.
pub fn allowed(ip: IpAddr, allow_private: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    allow_private || !is_internal(ip)
}

/// Private, loopback, link-local, shared (CGNAT) or unique-local.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Why a URL is not a target, for a 400 naming the field.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, String> {
    if text.is_empty() || text.len() > MAX_URL_LEN {
        return Err(format!("url must be 1-{MAX_URL_LEN} characters"));
    }
    let url = Url::parse(text).map_err(|e| format!("url is not a valid URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url must not hold a user name or password".into());
    }
    let Some(host) = url.host_str() else {
        return Err("url must name a host".into());
    };
    let literal: Option<IpAddr> = host.trim_matches(['[', ']']).parse().ok();
    let loopback = literal.is_some_and(|ip| ip.is_loopback()) || host == "localhost";
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err("url must be https:// (plain http:// only to a loopback address)".into())
        }
        other => return Err(format!("url must be https://, not {other}://")),
    }
    if let Some(ip) = literal {
        if !allowed(ip, allow_private) {
            return Err(refused(ip));
        }
    }
    if host == "localhost" && !allow_private {
        return Err(format!(
            "url names a loopback host: webhooks to private, loopback and link-local \
             addresses are refused unless the service runs with {ALLOW_FLAG}"
        ));
    }
    Ok(url)
}

fn refused(ip: IpAddr) -> String {
    format!(
        "url's address {ip} is private, loopback, link-local or not routable: webhooks to \
         such addresses are refused unless the service runs with {ALLOW_FLAG}"
    )
}

/// Resolves the URL's host now and refuses it if none of its addresses may
/// be connected to (the check at send time is [`SafeResolver`]'s).
pub async fn check_resolves(url: &Url, allow_private: bool) -> Result<(), String> {
    let Some(host) = url.host_str() else {
        return Err("url must name a host".into());
    };
    if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| format!("url's host {host:?} does not resolve"))?
        .collect();
    match addrs.iter().find(|a| !allowed(a.ip(), allow_private)) {
        Some(bad) => Err(refused(bad.ip())),
        None if addrs.is_empty() => Err(format!("url's host {host:?} does not resolve")),
        None => Ok(()),
    }
}

/// The resolver of webhook sends: only addresses [`allowed`].
struct SafeResolver {
    allow_private: bool,
}

/// Every address a name resolved to was refused.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to refused (private, loopback or link-local) addresses")]
pub struct RefusedAddress;

impl Resolve for SafeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let ok: Vec<SocketAddr> = found.filter(|a| allowed(a.ip(), allow)).collect();
            if ok.is_empty() {
                return Err(Box::new(RefusedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client of webhook sends: no redirects followed, a short timeout,
/// names resolved by [`SafeResolver`].
pub fn client(allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .dns_resolver(Arc::new(SafeResolver { allow_private }))
        .user_agent(concat!("keydeck-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook HTTP client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_without_the_flag() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!allowed(ip, false), "{ip}");
        }
        assert!(allowed("127.0.0.1".parse().unwrap(), true));
        assert!(!allowed("0.0.0.0".parse().unwrap(), true));
        assert!(allowed("93.184.216.34".parse().unwrap(), false));
        assert!(allowed("2606:2800:220:1::1".parse().unwrap(), false));
    }

    #[test]
    fn urls_need_https_off_loopback() {
        assert!(check_url("http://example.com/hook", true).is_err());
        assert!(check_url("ftp://example.com/hook", true).is_err());
        assert!(check_url("https://user:pw@example.com/", true).is_err());
        assert!(check_url("http://127.0.0.1:9/hook", false).is_err());
        assert!(check_url("http://localhost:9/hook", false).is_err());
        assert!(check_url("https://10.0.0.1/hook", false).is_err());
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_url("https://example.com/hook", false).is_ok());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN)), false).is_err());
    }
}
