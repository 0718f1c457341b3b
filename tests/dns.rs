//! Cluster DNS for real (root): busybox pods ask the daemon's DNS server on their bridge
//! address for Service names; a name outside the zone goes to an upstream this test runs
//! on 127.0.0.1 (never to a resolver of the host). Pods' /etc/resolv.conf follows their
//! dnsPolicy and dnsConfig.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use berth::network::Ipv4Net;
use common::{TestDaemon, eventually, ok, stdout};
use hickory_server::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

/// The address the test's upstream answers for every name.
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);

/// A tiny UDP DNS server on 127.0.0.1 answering every A query with [`UPSTREAM_ANSWER`];
/// counts queries; stops when dropped.
struct Upstream {
    port: u16,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    fn start() -> Upstream {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the upstream");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let port = sock.local_addr().expect("addr").port();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                q.fetch_add(1, Ordering::Relaxed);
                let mut reply =
                    Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
                reply.metadata.recursion_desired = query.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                reply.add_queries(query.queries.clone());
                for qq in &query.queries {
                    if qq.query_type() == hickory_server::proto::rr::RecordType::A {
                        reply.add_answer(Record::from_rdata(
                            qq.name().clone(),
                            60,
                            RData::A(A(UPSTREAM_ANSWER)),
                        ));
                    }
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = sock.send_to(&bytes, from);
                }
            }
        });
        Upstream {
            port,
            queries,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn daemon(upstream: &Upstream) -> TestDaemon {
    let d = TestDaemon::start_with_config(&format!(
        "dnsUpstreams: [\"127.0.0.1:{}\"]\n",
        upstream.port
    ));
    d.import_busybox();
    d
}

fn gateway(d: &TestDaemon) -> Ipv4Addr {
    let net: Ipv4Net = d.net.pod_cidr.parse().expect("cidr");
    net.gateway()
}

fn sleeper(name: &str, labels: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
{extra_spec}  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
"
    )
}

/// Waits for the pod to be Running and ready; returns its IP.
fn running(d: &TestDaemon, name: &str) -> String {
    let p = eventually(60, &format!("pod {name} ready"), || {
        let o = d.cli(&["get", "pod", name, "-o", "json"]);
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        (p["status"]["phase"] == "Running" && p["status"]["containerStatuses"][0]["ready"] == true)
            .then_some(p)
    });
    p["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn exec(d: &TestDaemon, pod: &str, cmd: &[&str]) -> std::process::Output {
    let mut args = vec!["exec", pod, "--"];
    args.extend_from_slice(cmd);
    d.cli(&args)
}

fn nslookup(d: &TestDaemon, pod: &str, args: &[&str]) -> String {
    let mut cmd = vec!["nslookup"];
    cmd.extend_from_slice(args);
    let o = exec(d, pod, &cmd);
    format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr))
}

/// Asks the daemon's DNS server directly from the host (UDP, or TCP when `tcp`).
fn ask(server: Ipv4Addr, name: &str, qtype: RecordType, tcp: bool) -> Message {
    use std::io::{Read, Write};
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    let bytes = q.to_vec().expect("encode");
    let addr = SocketAddrV4::new(server, 53);
    let reply = if tcp {
        let mut s = std::net::TcpStream::connect(addr).expect("connect over TCP");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        s.write_all(&framed).expect("send");
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("length");
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).expect("reply");
        buf
    } else {
        let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.send_to(&bytes, addr).expect("send");
        let mut buf = vec![0u8; 4096];
        let n = s.recv(&mut buf).expect("reply over UDP");
        buf.truncate(n);
        buf
    };
    let m = Message::from_vec(&reply).expect("decode");
    assert_eq!(m.metadata.id, q.metadata.id);
    m
}

/// The host's search domains as the kubelet appends them.
fn host_searches() -> Vec<String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    berth::kubelet::dns::HostResolv::parse(&text).searches
}

#[test]
fn services_resolve_in_pods_and_other_names_go_upstream() {
    let upstream = Upstream::start();
    let mut d = daemon(&upstream);
    let gw = gateway(&d);
    d.apply_yaml(
        "services",
        "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - {name: pg, port: 5432}
",
    );
    d.apply_yaml("client", &sleeper("client", "", ""));
    d.apply_yaml(
        "db-0",
        &sleeper("db-0", "app: db", "  hostname: db-0\n  subdomain: db\n"),
    );
    // A pod of the headless Service that never becomes ready.
    d.apply_yaml(
        "db-1",
        "apiVersion: v1
kind: Pod
metadata:
  name: db-1
  labels: {app: db}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    readinessProbe:
      exec: {command: ['false']}
      periodSeconds: 1
",
    );
    running(&d, "client");
    let db_ip = running(&d, "db-0");
    // The ClusterIP the API server allocated (from this test daemon's own serviceCIDR).
    let svc: serde_json::Value =
        serde_json::from_str(&ok(&d.cli(&["get", "service", "web", "-o", "json"]))).unwrap();
    let cluster_ip = svc["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(cluster_ip.parse::<std::net::Ipv4Addr>().is_ok(), "{svc}");

    // The pod's resolv.conf points at the cluster DNS with Kubernetes' search path.
    let mut search = vec![
        "default.svc.cluster.local".to_string(),
        "svc.cluster.local".into(),
        "cluster.local".into(),
    ];
    for s in host_searches() {
        if !search.contains(&s) {
            search.push(s);
        }
    }
    let resolv = ok(&exec(&d, "client", &["cat", "/etc/resolv.conf"]));
    assert_eq!(
        resolv,
        format!(
            "search {}\nnameserver {gw}\noptions ndots:5\n",
            search.join(" ")
        )
    );
    // /etc/hosts names the pod by its hostname and, with a subdomain, its full name.
    let hosts = ok(&exec(&d, "db-0", &["cat", "/etc/hosts"]));
    assert!(
        hosts.ends_with(&format!(
            "{db_ip}\tdb-0.db.default.svc.cluster.local\tdb-0\n"
        )),
        "{hosts}"
    );
    assert_eq!(ok(&exec(&d, "db-0", &["hostname"])), "db-0\n");

    // ClusterIP: the full name and the short one through the search path.
    let full = nslookup(&d, "client", &["web.default.svc.cluster.local"]);
    assert!(full.contains(&cluster_ip), "{full}");
    let short = nslookup(&d, "client", &["web"]);
    assert!(short.contains(&cluster_ip), "{short}");
    // SRV for the named port.
    let srv = nslookup(
        &d,
        "client",
        &["-type=SRV", "_http._tcp.web.default.svc.cluster.local"],
    );
    assert!(
        srv.contains("web.default.svc.cluster.local") && srv.contains(" 80 "),
        "{srv}"
    );
    // Headless: the ready pod's address, and its hostname record.
    let headless = eventually(60, "the headless service resolves to the pod", || {
        let out = nslookup(&d, "client", &["db.default.svc.cluster.local"]);
        out.contains(&db_ip).then_some(out)
    });
    assert!(!headless.contains(&cluster_ip), "{headless}");
    // The not-ready pod is in the Service's EndpointSlice, but not in its DNS answer.
    let unready_ip = eventually(60, "the unready pod listed as not ready", || {
        let o = d.cli(&["get", "endpointslices", "-o", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        list["items"]
            .as_array()?
            .iter()
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "db")
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| e["targetRef"]["name"] == "db-1" && e["conditions"]["ready"] == false)
            .and_then(|e| e["addresses"][0].as_str().map(str::to_string))
    });
    let headless = nslookup(&d, "client", &["db.default.svc.cluster.local"]);
    assert!(
        headless.contains(&db_ip) && !headless.contains(&unready_ip),
        "{headless}"
    );
    let host = nslookup(&d, "client", &["db-0.db.default.svc.cluster.local"]);
    assert!(host.contains(&db_ip), "{host}");
    // A name of the zone that does not exist.
    let missing = nslookup(&d, "client", &["nope.default.svc.cluster.local"]);
    assert!(missing.contains("NXDOMAIN"), "{missing}");
    // The same over UDP and TCP from the host: NXDOMAIN and NODATA carry the zone's SOA.
    for tcp in [false, true] {
        let a = ask(gw, "web.default.svc.cluster.local.", RecordType::A, tcp);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert!(a.metadata.authoritative);
        assert!(
            matches!(&a.answers[..], [r] if r.data == RData::A(A(cluster_ip.parse::<Ipv4Addr>().unwrap()))),
            "{a:?}"
        );
        let none = ask(gw, "nope.default.svc.cluster.local.", RecordType::A, tcp);
        assert_eq!(none.metadata.response_code, ResponseCode::NXDomain);
        assert!(
            matches!(&none.authorities[..], [r] if r.record_type() == RecordType::SOA),
            "{none:?}"
        );
        let aaaa = ask(gw, "web.default.svc.cluster.local.", RecordType::AAAA, tcp);
        assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
        assert!(aaaa.answers.is_empty(), "{aaaa:?}");
        assert!(
            matches!(&aaaa.authorities[..], [r] if r.record_type() == RecordType::SOA),
            "{aaaa:?}"
        );
    }
    assert_eq!(
        upstream.queries.load(Ordering::Relaxed),
        0,
        "zone names stay local"
    );

    // Outside the zone: forwarded to the test's own upstream.
    let outside = nslookup(&d, "client", &["outside.berth-test."]);
    assert!(outside.contains(&UPSTREAM_ANSWER.to_string()), "{outside}");
    assert!(upstream.queries.load(Ordering::Relaxed) > 0);

    // Reverse lookup of the ClusterIP names the Service (answered here, not upstream).
    let before = upstream.queries.load(Ordering::Relaxed);
    let ptr = nslookup(&d, "client", &[&cluster_ip]);
    assert!(
        ptr.contains("name = web.default.svc.cluster.local"),
        "{ptr}"
    );
    assert_eq!(upstream.queries.load(Ordering::Relaxed), before);

    // A deleted Service stops resolving.
    ok(&d.cli(&["delete", "service", "web"]));
    eventually(30, "the deleted service stops resolving", || {
        let out = nslookup(&d, "client", &["web.default.svc.cluster.local"]);
        (!out.contains(&cluster_ip)).then_some(())
    });

    // The server goes with the daemon: port 53 of the bridge address is free again.
    d.remove_all_pods();
    let status = d.stop().expect("the daemon was running");
    assert!(status.success(), "{status}; log:\n{}", d.log());
    assert!(d.log().contains("cluster DNS stopped"), "{}", d.log());
    let addr = SocketAddrV4::new(gw, 53);
    UdpSocket::bind(addr).expect("UDP port 53 released by the stopped daemon");
    TcpListener::bind(addr).expect("TCP port 53 released by the stopped daemon");
}

#[test]
fn resolv_conf_follows_the_dns_policy() {
    let upstream = Upstream::start();
    let d = daemon(&upstream);
    let gw = gateway(&d);
    d.apply_yaml(
        "default",
        &sleeper("host-dns", "", "  dnsPolicy: Default\n"),
    );
    d.apply_yaml(
        "none",
        &sleeper(
            "own-dns",
            "",
            "  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [example.test]
    options:
    - {name: ndots, value: '2'}
    - {name: edns0}
",
        ),
    );
    d.apply_yaml(
        "merged",
        &sleeper(
            "merged-dns",
            "",
            "  dnsConfig:
    nameservers: [192.0.2.54]
    searches: [extra.test]
    options:
    - {name: ndots, value: '1'}
",
        ),
    );
    for p in ["host-dns", "own-dns", "merged-dns"] {
        running(&d, p);
    }
    let host = berth::kubelet::dns::HostResolv::read();
    let mut want = String::new();
    if !host.searches.is_empty() {
        want.push_str(&format!("search {}\n", host.searches.join(" ")));
    }
    for n in &host.nameservers {
        want.push_str(&format!("nameserver {n}\n"));
    }
    if !host.options.is_empty() {
        want.push_str(&format!("options {}\n", host.options.join(" ")));
    }
    assert_eq!(
        ok(&exec(&d, "host-dns", &["cat", "/etc/resolv.conf"])),
        want
    );
    assert_eq!(
        ok(&exec(&d, "own-dns", &["cat", "/etc/resolv.conf"])),
        "search example.test\nnameserver 192.0.2.53\noptions ndots:2 edns0\n"
    );
    let merged = ok(&exec(&d, "merged-dns", &["cat", "/etc/resolv.conf"]));
    assert!(
        merged.starts_with("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{merged}"
    );
    assert!(merged.contains(" extra.test\n"), "{merged}");
    assert!(
        merged.contains(&format!("nameserver {gw}\nnameserver 192.0.2.54\n")),
        "{merged}"
    );
    assert!(merged.ends_with("options ndots:1\n"), "{merged}");
    // Too many nameservers: cut to three, with Kubernetes' warning event.
    d.apply_yaml(
        "many",
        &sleeper(
            "many-dns",
            "",
            "  dnsConfig:
    nameservers: [192.0.2.1, 192.0.2.2, 192.0.2.3]
",
        ),
    );
    running(&d, "many-dns");
    let many = ok(&exec(&d, "many-dns", &["cat", "/etc/resolv.conf"]));
    assert_eq!(many.matches("nameserver ").count(), 3, "{many}");
    let events = eventually(30, "the DNSConfigForming event", || {
        let out = ok(&d.cli(&["get", "events", "-o", "json"]));
        out.contains("DNSConfigForming").then_some(out)
    });
    assert!(
        events.contains("Nameserver limits were exceeded"),
        "{events}"
    );
    assert_eq!(upstream.queries.load(Ordering::Relaxed), 0);
}

#[test]
fn a_taken_dns_port_leaves_the_node_running_with_the_hosts_resolvers() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let gw = gateway(&d);
    // The bridge keeps its address while the daemon is down: another DNS server takes
    // port 53 on it, as a Pi-hole listening on every address would.
    d.stop();
    let _taken = UdpSocket::bind(SocketAddrV4::new(gw, 53)).expect("bind port 53");
    d.spawn();
    assert!(
        d.log().contains("cluster DNS is off"),
        "the daemon says why cluster DNS is off"
    );
    d.apply_yaml("client", &sleeper("client", "", ""));
    running(&d, "client");
    let resolv = ok(&exec(&d, "client", &["cat", "/etc/resolv.conf"]));
    assert!(!resolv.contains(&gw.to_string()), "{resolv}");
    let events = ok(&d.cli(&["get", "events", "-o", "json"]));
    assert!(events.contains("MissingClusterDNS"), "{events}");
    d.remove_all_pods();
}
