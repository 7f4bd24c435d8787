//! Which hosts external sources may come from: the operator's allow- and deny-lists (host names
//! and CIDRs) on top of the SSRF guard's special-purpose address registry (`netguard`).

use super::netguard::{self, SpecialRange};
use ipnet::IpNet;
use std::net::IpAddr;

/// One entry of `source_allow_hosts` / `source_deny_hosts`.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// `images.example.com`
    Name(String),
    /// `*.example.com`: any subdomain (not the apex).
    Suffix(String),
    /// `10.0.0.0/8`, `127.0.0.1/32`
    Net(IpNet),
}

impl Rule {
    fn parse(text: &str) -> Result<Rule, String> {
        let t = text.trim().to_ascii_lowercase();
        if let Ok(net) = t.parse::<IpNet>() {
            return Ok(Rule::Net(net));
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(Rule::Net(IpNet::from(ip)));
        }
        let name = t.strip_prefix("*.").unwrap_or(&t);
        let valid = !name.is_empty() && name.split('.').all(|l| !l.is_empty() && l.bytes().all(is_label_byte));
        match (valid, t.starts_with("*.")) {
            (false, _) => Err(format!("`{text}` is neither a host name, `*.domain` nor a CIDR")),
            (true, true) => Ok(Rule::Suffix(format!(".{name}"))),
            (true, false) => Ok(Rule::Name(name.to_string())),
        }
    }

    fn matches_name(&self, host: &str) -> bool {
        match self {
            Rule::Name(n) => host == n,
            Rule::Suffix(s) => host.ends_with(s.as_str()),
            Rule::Net(_) => false,
        }
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        matches!(self, Rule::Net(net) if net.contains(&ip))
    }
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Why a destination is refused.
#[derive(Debug, Clone)]
pub enum Refused {
    /// A special-purpose address (loopback, private, link-local, …), with its registry row.
    Special { host: String, ip: IpAddr, range: &'static SpecialRange },
    /// A `source_deny_hosts` entry matches.
    Denied { host: String, rule: String },
    /// `source_allow_hosts` is set and nothing in it matches.
    NotAllowed { host: String },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Special { host, ip, range: r } => {
                if host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_err() {
                    write!(f, "{host} is ")?;
                }
                write!(f, "{ip} in {} ({}, {}), not globally reachable", r.prefix, r.name, r.rfc)
            }
            Refused::Denied { host, rule } => write!(f, "{host} matches `{rule}` in source_deny_hosts"),
            Refused::NotAllowed { host } => write!(f, "{host} is not in source_allow_hosts"),
        }
    }
}

impl std::error::Error for Refused {}

/// The operator's lists, and whether special-purpose addresses are allowed at all.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    allow: Vec<(String, Rule)>,
    deny: Vec<(String, Rule)>,
    allow_private: bool,
}

impl HostPolicy {
    pub fn new(allow: &[String], deny: &[String], allow_private: bool) -> Result<HostPolicy, String> {
        let parse = |list: &[String], field: &str| {
            list.iter()
                .map(|t| Rule::parse(t).map(|r| (t.clone(), r)).map_err(|e| format!("{field}: {e}")))
                .collect::<Result<Vec<_>, String>>()
        };
        let (allow, deny) = (parse(allow, "source_allow_hosts")?, parse(deny, "source_deny_hosts")?);
        Ok(HostPolicy { allow, deny, allow_private })
    }

    /// No lists, every address: for trusted aliases.
    pub fn open() -> HostPolicy {
        HostPolicy { allow_private: true, ..HostPolicy::default() }
    }

    /// Before DNS: a denied name is refused; so is a name the allow-list can only admit by name
    /// (when it has no CIDRs that a resolved address could fall into).
    pub fn check_name(&self, host: &str) -> Result<(), Refused> {
        let host = host.to_ascii_lowercase();
        if let Some((text, _)) = self.deny.iter().find(|(_, r)| r.matches_name(&host)) {
            return Err(Refused::Denied { host, rule: text.clone() });
        }
        let has_nets = self.allow.iter().any(|(_, r)| matches!(r, Rule::Net(_)));
        if !self.allow.is_empty() && !has_nets && !self.allow.iter().any(|(_, r)| r.matches_name(&host)) {
            return Err(Refused::NotAllowed { host });
        }
        Ok(())
    }

    /// An address `host` resolved to (or a literal one). An allow-listed CIDR also opens
    /// special-purpose ranges: the operator named them.
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let lower = host.to_ascii_lowercase();
        if let Some((text, _)) = self.deny.iter().find(|(_, r)| r.matches_ip(ip) || r.matches_name(&lower)) {
            return Err(Refused::Denied { host: lower, rule: text.clone() });
        }
        let by_net = self.allow.iter().any(|(_, r)| r.matches_ip(ip));
        if !self.allow.is_empty() && !by_net && !self.allow.iter().any(|(_, r)| r.matches_name(&lower)) {
            return Err(Refused::NotAllowed { host: lower });
        }
        if self.allow_private || by_net {
            return Ok(());
        }
        match netguard::refusal(ip) {
            Some(range) => Err(Refused::Special { host: host.to_string(), ip, range }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> HostPolicy {
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        HostPolicy::new(&s(allow), &s(deny), false).unwrap()
    }

    #[test]
    fn lists_of_names_and_cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let open = policy(&[], &["bad.example", "*.evil.net", "203.0.113.0/24"]);
        assert!(matches!(open.check_name("bad.example"), Err(Refused::Denied { .. })));
        assert!(matches!(open.check_name("x.evil.net"), Err(Refused::Denied { .. })));
        assert!(open.check_name("evil.net").is_ok(), "*. matches subdomains only");
        assert!(matches!(open.check_addr("ok.example", ip("203.0.113.9")), Err(Refused::Denied { .. })));
        assert!(open.check_addr("ok.example", ip("93.184.216.34")).is_ok());
        assert!(matches!(open.check_addr("ok.example", ip("10.1.2.3")), Err(Refused::Special { .. })));

        let names = policy(&["images.example.com", "*.cdn.example"], &[]);
        assert!(names.check_name("images.example.com").is_ok());
        assert!(names.check_name("a.cdn.example").is_ok());
        assert!(matches!(names.check_name("other.com"), Err(Refused::NotAllowed { .. })));
        assert!(matches!(names.check_addr("images.example.com", ip("127.0.0.1")), Err(Refused::Special { .. })));

        let local = policy(&["127.0.0.1/32"], &[]);
        assert!(local.check_name("anything").is_ok(), "decided on the address");
        assert!(local.check_addr("127.0.0.1", ip("127.0.0.1")).is_ok(), "an allowed CIDR opens a private range");
        assert!(matches!(local.check_addr("10.0.0.1", ip("10.0.0.1")), Err(Refused::NotAllowed { .. })));
        assert!(HostPolicy::new(&["no spaces".into()], &[], false).is_err());
    }
}
