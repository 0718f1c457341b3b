//! A pod's `/etc/resolv.conf`, formed as Kubernetes' kubelet forms it from `dnsPolicy` and
//! `dnsConfig`:
//!
//! - `ClusterFirst` (the default; for a hostNetwork pod it means `Default`) and
//!   `ClusterFirstWithHostNet`: the cluster DNS as nameserver, the search path
//!   `<ns>.svc.<domain> svc.<domain> <domain>` followed by the host's search domains, and
//!   `options ndots:5`;
//! - `Default`: the host's nameservers, search domains and options;
//! - `None`: nothing but `dnsConfig`.
//!
//! `dnsConfig` is then merged in (nameservers and searches appended without duplicates,
//! options overriding by name), and Kubernetes' limits applied: at most 3 nameservers, 32
//! search domains and 2048 characters of search line, with a `DNSConfigForming` warning
//! naming the line applied. Pure: the caller reads the host file and records the events.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;

/// The pod's names for its UTS hostname and `/etc/hosts`, as Kubernetes derives them:
/// `spec.hostname`, else the pod's name cut to 63 characters (without a trailing '-' or
/// '.'); with `spec.subdomain` the fully qualified
/// `<hostname>.<subdomain>.<ns>.svc.<cluster domain>`; and `spec.hostAliases`.
pub fn pod_hosts(pod: &Pod, cluster_domain: &str) -> crate::runtime::sandbox::PodHosts {
    let spec = pod.spec.as_ref();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let hostname = match spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
    {
        Some(h) => h.to_string(),
        None => name
            .get(..63)
            .unwrap_or(name)
            .trim_end_matches(['-', '.'])
            .to_string(),
    };
    let fqdn = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
        .map(|sub| {
            format!(
                "{hostname}.{sub}.{}.svc.{}",
                pod.metadata.namespace.as_deref().unwrap_or("default"),
                cluster_domain.trim_end_matches('.')
            )
        });
    let aliases = spec
        .and_then(|s| s.host_aliases.as_ref())
        .into_iter()
        .flatten()
        .map(|a| (a.ip.clone(), a.hostnames.clone().unwrap_or_default()))
        .collect();
    crate::runtime::sandbox::PodHosts {
        hostname,
        fqdn,
        aliases,
    }
}

/// Kubernetes' limits (pkg/apis/core/validation and the kubelet).
pub const MAX_NAMESERVERS: usize = 3;
pub const MAX_SEARCH_PATHS: usize = 32;
pub const MAX_SEARCH_CHARS: usize = 2048;

/// Where the cluster DNS answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDns {
    pub nameserver: Ipv4Addr,
    pub domain: String,
}

/// The host's resolver configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostResolv {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl HostResolv {
    /// Parses resolv.conf text: every `nameserver`, the last `search` (or `domain`) line,
    /// every option.
    pub fn parse(text: &str) -> HostResolv {
        let mut h = HostResolv::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => h.nameservers.extend(words.next().map(str::to_string)),
                Some("search") | Some("domain") => {
                    h.searches = words
                        .map(|w| w.trim_end_matches('.').to_string())
                        .filter(|w| !w.is_empty())
                        .collect();
                }
                Some("options") => h.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        h
    }

    /// The host's `/etc/resolv.conf`; on a systemd-resolved host whose file names only the
    /// local stub (unreachable from a pod), the real upstreams resolved keeps.
    pub fn read() -> HostResolv {
        let etc =
            HostResolv::parse(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        if !etc.nameservers.is_empty()
            && etc.nameservers.iter().all(|n| n.starts_with("127.0.0.53"))
            && let Ok(text) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf")
        {
            return HostResolv::parse(&text);
        }
        etc
    }
}

/// The file and the warnings (event reason, message) met while forming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodResolv {
    pub text: String,
    pub warnings: Vec<(&'static str, String)>,
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !list.contains(&i) {
            list.push(i);
        }
    }
}

/// Forms the pod's resolv.conf. `cluster` is `None` when this node has no cluster DNS.
pub fn pod_resolv_conf(pod: &Pod, cluster: Option<&ClusterDns>, host: &HostResolv) -> PodResolv {
    let spec = pod.spec.as_ref();
    let policy = spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let mut warnings = Vec::new();
    let (mut servers, mut searches, mut options): (Vec<String>, Vec<String>, Vec<String>) =
        match policy {
            "None" => Default::default(),
            "ClusterFirstWithHostNet" | "ClusterFirst"
                if policy != "ClusterFirst" || !host_network =>
            {
                match cluster {
                    Some(c) => {
                        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                        let mut s = vec![
                            format!("{ns}.svc.{}", c.domain),
                            format!("svc.{}", c.domain),
                            c.domain.clone(),
                        ];
                        push_unique(&mut s, host.searches.iter().cloned());
                        (
                            vec![c.nameserver.to_string()],
                            s,
                            vec!["ndots:5".to_string()],
                        )
                    }
                    None => {
                        warnings.push((
                            "MissingClusterDNS",
                            format!(
                                "pod: \"{}_{}({})\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"{policy}\" policy. Falling back to \"Default\" policy.",
                                pod.metadata.name.as_deref().unwrap_or_default(),
                                pod.metadata.namespace.as_deref().unwrap_or_default(),
                                pod.metadata.uid.as_deref().unwrap_or_default(),
                            ),
                        ));
                        (
                            host.nameservers.clone(),
                            host.searches.clone(),
                            host.options.clone(),
                        )
                    }
                }
            }
            _ => (
                host.nameservers.clone(),
                host.searches.clone(),
                host.options.clone(),
            ),
        };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        push_unique(&mut servers, extra.nameservers.iter().flatten().cloned());
        push_unique(
            &mut searches,
            extra
                .searches
                .iter()
                .flatten()
                .map(|s| s.trim_end_matches('.').to_string()),
        );
        for o in extra.options.iter().flatten() {
            let Some(name) = o.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let formed = match o.value.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            let same = |x: &String| x == name || x.starts_with(&format!("{name}:"));
            match options.iter().position(same) {
                Some(i) => options[i] = formed,
                None => options.push(formed),
            }
        }
    }
    if servers.len() > MAX_NAMESERVERS {
        servers.truncate(MAX_NAMESERVERS);
        warnings.push((
            "DNSConfigForming",
            format!(
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
                servers.join(" ")
            ),
        ));
    }
    let mut cut = false;
    if searches.len() > MAX_SEARCH_PATHS {
        searches.truncate(MAX_SEARCH_PATHS);
        cut = true;
    }
    while searches.join(" ").len() > MAX_SEARCH_CHARS {
        searches.pop();
        cut = true;
    }
    if cut {
        warnings.push((
            "DNSConfigForming",
            format!(
                "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
                searches.join(" ")
            ),
        ));
    }
    let mut text = String::new();
    if !searches.is_empty() {
        text.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for s in &servers {
        text.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        text.push_str(&format!("options {}\n", options.join(" ")));
    }
    PodResolv { text, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "team", "uid": "u1"},
            "spec": spec
        }))
        .expect("pod")
    }

    fn cluster() -> ClusterDns {
        ClusterDns {
            nameserver: Ipv4Addr::new(10, 244, 0, 1),
            domain: "cluster.local".into(),
        }
    }

    fn host() -> HostResolv {
        HostResolv::parse("nameserver 192.168.1.1\nsearch lan. home\noptions edns0 ndots:1\n")
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns() {
        let r = pod_resolv_conf(&pod(json!({"containers": []})), Some(&cluster()), &host());
        assert_eq!(
            r.text,
            "search team.svc.cluster.local svc.cluster.local cluster.local lan home\n\
             nameserver 10.244.0.1\noptions ndots:5\n"
        );
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn host_network_and_default_use_the_host() {
        let want = "search lan home\nnameserver 192.168.1.1\noptions edns0 ndots:1\n";
        let hn = pod(json!({"hostNetwork": true, "dnsPolicy": "ClusterFirst"}));
        assert_eq!(pod_resolv_conf(&hn, Some(&cluster()), &host()).text, want);
        let d = pod(json!({"dnsPolicy": "Default"}));
        assert_eq!(pod_resolv_conf(&d, Some(&cluster()), &host()).text, want);
        let hc = pod(json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}));
        assert!(
            pod_resolv_conf(&hc, Some(&cluster()), &host())
                .text
                .contains("nameserver 10.244.0.1\n")
        );
        let missing = pod_resolv_conf(&pod(json!({})), None, &host());
        assert_eq!(missing.text, want);
        assert_eq!(missing.warnings[0].0, "MissingClusterDNS");
    }

    #[test]
    fn none_takes_only_dns_config_and_options_merge() {
        let p = pod(json!({"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.2.3.4"], "searches": ["a.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
        assert_eq!(
            pod_resolv_conf(&p, Some(&cluster()), &host()).text,
            "search a.example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
        );
        let merged = pod(json!({"dnsConfig": {
            "nameservers": ["10.244.0.1", "1.1.1.1"],
            "searches": ["svc.cluster.local", "x.example"],
            "options": [{"name": "ndots", "value": "1"}, {"name": "timeout", "value": "2"}]}}));
        assert_eq!(
            pod_resolv_conf(&merged, Some(&cluster()), &host()).text,
            "search team.svc.cluster.local svc.cluster.local cluster.local lan home x.example\n\
             nameserver 10.244.0.1\nnameserver 1.1.1.1\noptions ndots:1 timeout:2\n"
        );
    }

    #[test]
    fn hosts_names_follow_hostname_subdomain_and_aliases() {
        let p = pod(json!({"hostname": "db-0", "subdomain": "db",
                           "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["a", "b"]}]}));
        let h = pod_hosts(&p, "cluster.local");
        assert_eq!(h.hostname, "db-0");
        assert_eq!(h.fqdn.as_deref(), Some("db-0.db.team.svc.cluster.local"));
        assert_eq!(
            h.aliases,
            [(
                "10.1.2.3".to_string(),
                vec!["a".to_string(), "b".to_string()]
            )]
        );
        let mut long = pod(json!({}));
        long.metadata.name = Some(format!("{}-x", "a".repeat(62)));
        assert_eq!(pod_hosts(&long, "cluster.local").hostname, "a".repeat(62));
        assert_eq!(pod_hosts(&pod(json!({})), "cluster.local").hostname, "p");
    }

    #[test]
    fn limits_cut_with_a_warning() {
        let p = pod(json!({"dnsConfig": {
            "nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"],
            "searches": (0..40).map(|i| format!("d{i}.example")).collect::<Vec<_>>()}}));
        let r = pod_resolv_conf(&p, Some(&cluster()), &host());
        assert_eq!(r.text.matches("nameserver ").count(), 3);
        let search = r.text.lines().next().expect("search line");
        assert_eq!(search.split_whitespace().count(), 1 + MAX_SEARCH_PATHS);
        let reasons: Vec<&str> = r.warnings.iter().map(|w| w.0).collect();
        assert_eq!(reasons, ["DNSConfigForming", "DNSConfigForming"]);
        assert!(
            r.warnings[0]
                .1
                .contains("nameserver line is: 10.244.0.1 1.1.1.1 2.2.2.2")
        );
    }
}
