//! Data-driven checks: every line of `ssrf_corpus.txt` and
//! `allowlist_corpus.txt` must end with its exact error code.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use citadel_egress::{Allowlist, Egress, EgressConfig, FetchRequest, StaticLookup};

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn fake_resolver() -> StaticLookup {
    StaticLookup::new()
        .with("localhost", &ips(&["127.0.0.1", "::1"]))
        .with("internal.test", &ips(&["10.0.0.5"]))
        .with("metadata.test", &ips(&["169.254.169.254"]))
        .with("v6-loopback.test", &ips(&["::1"]))
        .with(
            "all-private.test",
            &ips(&["192.168.1.1", "172.16.0.1", "fd00::1", "100.64.0.1"]),
        )
        .with("mapped.test", &ips(&["::ffff:127.0.0.1"]))
}

fn lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
}

fn list(patterns: &[&str]) -> Allowlist {
    Allowlist::parse(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

async fn code_of(egress: &Egress, allow: &[&Allowlist], url: &str) -> String {
    match egress
        .fetch(allow, FetchRequest::get(url, Duration::from_secs(5)))
        .await
    {
        Ok(r) => format!("ok {}", r.status),
        Err(e) => e.code().to_owned(),
    }
}

#[tokio::test]
async fn ssrf_corpus() {
    let egress = Egress::with_lookup(EgressConfig::default(), Arc::new(fake_resolver())).unwrap();
    let any = list(&["*", "http://*"]);
    let mut failures = Vec::new();
    let mut count = 0;
    for fields in lines(include_str!("ssrf_corpus.txt")) {
        let [url, want] = fields[..] else {
            panic!("bad corpus line {fields:?}")
        };
        count += 1;
        let got = code_of(&egress, &[&any], url).await;
        if got != want {
            failures.push(format!("{url}: want {want}, got {got}"));
        }
    }
    assert!(count > 70, "only {count} lines");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn allowlist_corpus() {
    let egress =
        Egress::with_lookup(EgressConfig::default(), Arc::new(StaticLookup::new())).unwrap();
    let mut failures = Vec::new();
    for fields in lines(include_str!("allowlist_corpus.txt")) {
        let [patterns, url, want] = fields[..] else {
            panic!("bad corpus line {fields:?}")
        };
        let patterns: Vec<&str> = if patterns == "-" {
            Vec::new()
        } else {
            patterns.split(',').collect()
        };
        let grant = list(&patterns);
        let got = code_of(&egress, &[&grant], url).await;
        if got != want {
            failures.push(format!("{patterns:?} {url}: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn every_list_must_allow() {
    let egress =
        Egress::with_lookup(EgressConfig::default(), Arc::new(StaticLookup::new())).unwrap();
    let grant = list(&["*.example.com", "http://plain.example.com"]);
    let ceiling = list(&["api.example.com", "plain.example.com"]);
    let url = "https://api.example.com/";
    assert_eq!(code_of(&egress, &[&grant], url).await, "connect_failed");
    assert_eq!(
        code_of(&egress, &[&grant, &ceiling], url).await,
        "connect_failed"
    );
    let other = "https://other.example.com/";
    assert_eq!(code_of(&egress, &[&grant], other).await, "connect_failed");
    assert_eq!(
        code_of(&egress, &[&grant, &ceiling], other).await,
        "host_not_allowed"
    );
    assert_eq!(
        code_of(&egress, &[&ceiling, &grant], other).await,
        "host_not_allowed"
    );
    // The grant allows plain http, the ceiling only https.
    let plain = "http://plain.example.com/";
    assert_eq!(code_of(&egress, &[&grant], plain).await, "connect_failed");
    assert_eq!(
        code_of(&egress, &[&grant, &ceiling], plain).await,
        "scheme_not_allowed"
    );
    // No list at all allows nothing.
    assert_eq!(code_of(&egress, &[], url).await, "host_not_allowed");
}

#[tokio::test]
async fn allow_private_skips_the_guard_not_the_allowlist() {
    let config = EgressConfig {
        allow_private: true,
        ..EgressConfig::default()
    };
    let egress = Egress::with_lookup(config, Arc::new(fake_resolver())).unwrap();
    let grant = list(&["http://127.0.0.1:1"]);
    // Allowed, nothing listens on port 1: past the guard, refused by the peer.
    assert_eq!(
        code_of(&egress, &[&grant], "http://127.0.0.1:1/").await,
        "connect_failed"
    );
    assert_eq!(
        code_of(&egress, &[&grant], "http://10.0.0.5/").await,
        "host_not_allowed"
    );
    assert_eq!(
        code_of(&egress, &[&grant], "http://internal.test/").await,
        "host_not_allowed"
    );
    assert_eq!(
        code_of(&egress, &[&grant], "https://127.0.0.1:2/").await,
        "host_not_allowed"
    );
}
