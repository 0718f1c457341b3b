//! The security suite (root). From inside a default container: no berth socket, no host
//! processes, no host network, no raw devices, no kernel modules, no `mount`, no writes to
//! `/proc/sys` or `/sys`; Docker's default capabilities and a seccomp filter in force; the
//! API reachable only by a pod given the socket. On the socket: oversized, slow
//! (slowloris) and malformed requests refused without harming service to others.
//!
//! Who may use the socket at all (non-members refused, members and root may write) is in
//! `tests/bad_input.rs`.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;

fn report_pod(name: &str, script: &str, extra_spec: &str, extra_container: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
{extra_spec}  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, {script:?}]
{extra_container}"
    )
}

/// Runs `script` in a fresh default pod and returns what it printed.
fn report(
    d: &TestDaemon,
    name: &str,
    script: &str,
    extra_spec: &str,
    extra_container: &str,
) -> String {
    d.apply_yaml(name, &report_pod(name, script, extra_spec, extra_container));
    eventually(60, &format!("{name} to finish"), || {
        std::thread::sleep(Duration::from_millis(300));
        let p = d.get_json(&["pod", name])?;
        let phase = p["status"]["phase"].as_str()?;
        if phase == "Succeeded" || phase == "Failed" {
            let o = d.cli(&["logs", name]);
            return Some(stdout(&o));
        }
        None
    })
}

/// The value after `key=` on its own line.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in:\n{out}"))
}

/// Major and minor numbers of the host's first disk.
fn host_disk() -> (u32, u32) {
    for dev in ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda"] {
        if let Ok(m) = std::fs::metadata(dev) {
            use std::os::unix::fs::MetadataExt;
            let rdev = m.rdev();
            return (
                nix::sys::stat::major(rdev) as u32,
                nix::sys::stat::minor(rdev) as u32,
            );
        }
    }
    (8, 0)
}

#[test]
fn a_default_container_cannot_reach_the_host() {
    let d = TestDaemon::start();
    d.import_busybox();
    let (major, minor) = host_disk();
    let socket = d.socket().display().to_string();
    let state = d.state_dir().display().to_string();
    let script = format!(
        "echo socket=$(test -e {socket} && echo visible || echo absent)
echo state=$(test -e {state} && echo visible || echo absent)
echo procs=$(ls /proc | grep -c '^[0-9]')
echo berthprocs=$(cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^berth')
echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,)
echo devs=$(ls /dev | sort | tr '\\n' ,)
mknod /tmp/disk b {major} {minor} 2>/dev/null
echo rawdisk=$(head -c 1 /tmp/disk >/dev/null 2>&1 && echo readable || echo denied)
echo kmem=$(head -c 1 /dev/mem >/dev/null 2>&1 && echo readable || echo denied)
printf 'not a module' > /tmp/m.ko
echo module=$(insmod /tmp/m.ko 2>&1 | tr '\\n' ' ')
echo mount=$(mount -t tmpfs none /mnt 2>/dev/null && echo allowed || echo denied)
echo remount=$(mount -o remount,rw /proc/sys 2>/dev/null && echo allowed || echo denied)
echo procsys=$( (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo writable || echo readonly)
echo sysrq=$( (echo h > /proc/sysrq-trigger) 2>/dev/null && echo writable || echo readonly)
echo sys=$( (echo x > /sys/kernel/uevent_helper) 2>/dev/null && echo writable || echo readonly)
echo hostname=$(hostname evil 2>/dev/null && echo changed || echo denied)
echo userns=$(unshare -U true 2>/dev/null && echo allowed || echo denied)
echo nsenter=$(nsenter -t 1 -m -p true 2>/dev/null && echo host || echo denied)
grep -E '^(CapEff|CapBnd|CapPrm|Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\\t' | tr : =
"
    );
    let out = report(&d, "probe", &script, "", "");
    assert_eq!(field(&out, "socket"), "absent", "{out}");
    assert_eq!(field(&out, "state"), "absent", "{out}");
    let procs: u32 = field(&out, "procs").parse().expect("procs");
    assert!(procs <= 5, "the container sees host processes:\n{out}");
    assert_eq!(field(&out, "berthprocs"), "0", "{out}");
    // Its own network namespace: its loopback and its veth, nothing of the host's.
    assert_eq!(field(&out, "ifaces"), "eth0,lo,", "{out}");
    // Only the default device nodes.
    for dev in field(&out, "devs").split(',').filter(|s| !s.is_empty()) {
        assert!(
            [
                "console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm",
                "stderr", "stdin", "stdout", "tty", "urandom", "zero"
            ]
            .contains(&dev),
            "unexpected device /dev/{dev}:\n{out}"
        );
    }
    assert_eq!(field(&out, "rawdisk"), "denied", "{out}");
    assert_eq!(field(&out, "kmem"), "denied", "{out}");
    let module = field(&out, "module");
    assert!(
        module.contains("not permitted") || module.contains("denied"),
        "insmod was not refused: {module}"
    );
    assert_eq!(field(&out, "mount"), "denied", "{out}");
    assert_eq!(field(&out, "remount"), "denied", "{out}");
    assert_eq!(field(&out, "procsys"), "readonly", "{out}");
    assert_eq!(field(&out, "sysrq"), "readonly", "{out}");
    assert_eq!(field(&out, "sys"), "readonly", "{out}");
    assert_eq!(field(&out, "hostname"), "denied", "{out}");
    assert_eq!(field(&out, "userns"), "denied", "{out}");
    assert_eq!(field(&out, "nsenter"), "denied", "{out}");
    // Docker's default capabilities (no SYS_ADMIN, SYS_MODULE, SYS_TIME, SYS_BOOT, …)
    // and a seccomp filter, with no_new_privs. (The clock is not tried: a regression
    // there would set the host's.)
    assert_eq!(field(&out, "CapEff"), "00000000a80425fb", "{out}");
    assert_eq!(field(&out, "CapBnd"), "00000000a80425fb", "{out}");
    assert_eq!(field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(field(&out, "NoNewPrivs"), "1", "{out}");
}

/// The TCP ports the daemon listens on (from its sockets' inodes and /proc/net/tcp*).
fn daemon_tcp_ports(pid: u32) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.display().to_string();
                if let Some(i) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(i.to_string());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, state 0A = LISTEN, inode.
            if f.len() > 9
                && f[3] == "0A"
                && inodes.contains(f[9])
                && let Some(port) = f[1].rsplit(':').next()
            {
                ports.push(u16::from_str_radix(port, 16).unwrap_or(0));
            }
        }
    }
    ports.sort();
    ports
}

#[test]
fn a_pod_reaches_the_api_only_when_given_the_socket() {
    let d = TestDaemon::start();
    d.import_busybox();
    // The API is served on the Unix socket only: the daemon's TCP listeners are the
    // cluster DNS (53) and nothing else (Ingress is off in test daemons).
    let ports = daemon_tcp_ports(d.pid());
    assert!(
        ports.iter().all(|p| *p == 53),
        "the daemon listens on TCP ports {ports:?}"
    );
    // A pod given the socket (a hostPath volume, as one must choose to write) sees it.
    let out = report(
        &d,
        "given",
        "echo given=$(test -S /run/berth/berth.sock && echo yes || echo no)",
        &format!(
            "  volumes:\n  - name: api\n    hostPath: {{path: {}, type: Socket}}\n",
            d.socket().display()
        ),
        "    volumeMounts:\n    - {name: api, mountPath: /run/berth/berth.sock}\n",
    );
    assert_eq!(field(&out, "given"), "yes", "{out}");
}

/// Opens a raw connection to the daemon's socket.
fn connect(d: &TestDaemon) -> UnixStream {
    let s = UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s
}

/// Sends `request` on a fresh connection; returns the status line of the answer (empty if
/// the daemon closed the connection without one).
fn raw(d: &TestDaemon, request: &[u8]) -> String {
    let mut s = connect(d);
    // The daemon may answer and close before it has read everything (a 431): the write
    // then fails, and the answer is still there to read. (No half-close: hyper ends a
    // connection whose client shut its side before the answer.)
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    if let Err(e) = s.read_to_end(&mut buf) {
        eprintln!("reading the answer: {e} (after {} bytes)", buf.len());
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The daemon serves others: `berth get namespaces` works.
fn serves(d: &TestDaemon) {
    let o = d.cli(&["get", "namespaces"]);
    assert!(
        o.status.success(),
        "the daemon stopped serving: {}",
        stderr(&o)
    );
}

#[test]
fn slow_clients_are_cut_off_without_harming_others() {
    let d = TestDaemon::start();
    // Slowloris: many connections, each sending its headers a byte at a time.
    let mut slow: Vec<UnixStream> = (0..200)
        .map(|_| {
            let mut s = connect(&d);
            s.write_all(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: berth\r\n")
                .expect("write");
            s
        })
        .collect();
    // An idle connection that never sends a byte.
    let idle = connect(&d);
    let started = Instant::now();
    let mut cut = vec![false; slow.len()];
    let mut served = 0;
    while cut.iter().any(|c| !c) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "slow connections were never cut off"
        );
        for (i, s) in slow.iter_mut().enumerate() {
            if !cut[i] && s.write_all(b"X").is_err() {
                cut[i] = true;
            }
        }
        // Meanwhile everyone else is served.
        serves(&d);
        served += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(served > 1);
    // The idle connection was closed too (read sees the end).
    let mut idle = idle;
    let mut buf = [0u8; 64];
    let n = idle.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A body that trickles in is cut off too.
    let mut trickle = connect(&d);
    trickle
        .write_all(
            b"POST /api/v1/namespaces HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
        )
        .expect("write");
    let began = Instant::now();
    let mut answer = Vec::new();
    loop {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "a trickling body was never cut off"
        );
        if trickle.write_all(b" ").is_err() {
            break;
        }
        serves(&d);
        std::thread::sleep(Duration::from_millis(500));
        let _ = trickle.set_nonblocking(true);
        let mut buf = [0u8; 512];
        if let Ok(n) = trickle.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || !answer.is_empty() {
                break;
            }
        }
        let _ = trickle.set_nonblocking(false);
    }
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    serves(&d);
}

#[test]
fn malformed_and_oversized_requests_are_refused_and_service_goes_on() {
    let d = TestDaemon::start();
    // Not HTTP at all.
    let line = raw(&d, b"\x00\x01\x02garbage\r\n\r\n");
    assert!(line.is_empty() || line.contains(" 400 "), "{line}");
    serves(&d);
    // A header far past any sane size.
    let mut huge = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: berth\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    huge.extend_from_slice(b"\r\n\r\n");
    let line = raw(&d, &huge);
    assert!(
        line.is_empty() || line.contains(" 431 ") || line.contains(" 400 "),
        "{line}"
    );
    serves(&d);
    // JSON nested past any sane depth: a clear 400, no stack overflow.
    let deep = "[".repeat(100_000);
    let req = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{deep}",
        deep.len()
    );
    let line = raw(&d, req.as_bytes());
    assert!(line.contains(" 400 "), "{line}");
    serves(&d);
    // A body over the limit (3 MiB) on one connection while others are served.
    let big = "a".repeat(4 << 20);
    let req = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
        big.len()
    );
    let line = raw(&d, req.as_bytes());
    assert!(line.contains(" 413 "), "{line}");
    serves(&d);
    // Paths that try to climb out, and bytes that are not UTF-8.
    for path in [
        "/api/v1/namespaces/../../../etc/passwd",
        "/apis/images.berth.dev/v1/images/..%2F..%2Fetc%2Fpasswd",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n");
        let line = raw(&d, req.as_bytes());
        assert!(
            line.contains(" 404 ") || line.contains(" 400 "),
            "{path}: {line}"
        );
    }
    // A namespace that cannot exist lists nothing, as in Kubernetes.
    let req =
        "GET /api/v1/namespaces/%ff%fe/pods HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n";
    let line = raw(&d, req.as_bytes());
    assert!(
        line.contains(" 200 ") || line.contains(" 400 ") || line.contains(" 404 "),
        "{line}"
    );
    serves(&d);
    // A YAML alias bomb given to the CLI is refused, quickly and in bounded memory.
    let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: bomb}\n";
    let o = d.cli_with(&["apply", "-f", "-"], Some(bomb), None);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(!stderr(&o).is_empty());
    serves(&d);
}
