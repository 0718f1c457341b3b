//! The built-in Ingress controller with real pods (root): hosts and paths route to the right
//! Services, TLS certificates are chosen by SNI, force-ssl-redirect answers 308, a backend
//! without ready endpoints answers 503 and one that refuses the connection 502,
//! X-Forwarded-* reach the backend, a WebSocket echo works through it, and changing an
//! Ingress keeps a request in flight. Traffic goes only to 127.0.0.1 (the listeners), the
//! test's own pods and the test's own servers on its daemon's bridge address.

mod common;

use std::process::Command;

use common::{TestDaemon, eventually, ok};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A daemon whose Ingress listens on 127.0.0.1 on two free ports; returns (daemon, http, https).
fn daemon() -> (TestDaemon, u16, u16) {
    let (http, https) = (free_port(), free_port());
    let d = TestDaemon::start_with_config(&format!(
        "ingressAddress: 127.0.0.1\ningressHttpPort: {http}\ningressHttpsPort: {https}\n"
    ));
    (d, http, https)
}

/// curl through the ingress with `host` resolved to 127.0.0.1; (HTTP status, body, exit code).
fn curl(host: &str, port: u16, url: &str, extra: &[&str]) -> (u16, String, i32) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "30", "-w", "\n%{http_code}"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        body.to_string(),
        out.status.code().unwrap_or(-1),
    )
}

/// A busybox httpd pod (label app=`app`) serving `/www`: index pages naming the pod, a CGI
/// printing the X-Forwarded-* headers it got, and a slow CGI that answers once /tmp/go
/// exists (it marks /tmp/started when the request arrived).
fn web(name: &str, app: &str, readiness: bool) -> String {
    let probe = if readiness {
        "    readinessProbe:\n      exec: {command: [test, -e, /tmp/ready]}\n      periodSeconds: 1\n"
    } else {
        ""
    };
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {app}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    ports: [{{name: http, containerPort: 8080}}]
{probe}    command:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin /www/b
      echo "pod {name}" > /www/index.html
      echo "pod {name}" > /www/b/index.html
      cat > /www/cgi-bin/env <<'EOF'
      #!/bin/sh
      echo "Content-Type: text/plain"
      echo
      echo "pod={name} xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO host=$HTTP_X_FORWARDED_HOST"
      EOF
      cat > /www/cgi-bin/slow <<'EOF'
      #!/bin/sh
      touch /tmp/started
      while [ ! -e /tmp/go ]; do sleep 1; done
      echo "Content-Type: text/plain"
      echo
      echo "slow answer from {name}"
      EOF
      chmod +x /www/cgi-bin/env /www/cgi-bin/slow
      exec httpd -f -p 8080 -h /www
"#
    )
}

fn service(name: &str, port_name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports: [{{name: '{port_name}', port: 80, targetPort: http}}]
"
    )
}

/// A self-signed certificate for `host` (P-256); returns its PEM (certificate, key).
fn cert(d: &TestDaemon, host: &str) -> (String, String) {
    let (crt, key) = (
        d.dir.path().join(format!("{host}.crt")),
        d.dir.path().join(format!("{host}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .arg("-subj")
        .arg(format!("/CN={host}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{host}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(crt).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

fn tls_secret(name: &str, (crt, key): &(String, String)) -> String {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: {name}
type: kubernetes.io/tls
stringData:
  tls.crt: |
{}  tls.key: |
{}",
        indent(crt),
        indent(key)
    )
}

/// The main Ingress (no class: berth is the default class); `a_root` is the Service that
/// answers a.test's `/`.
fn main_ingress(a_root: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: main
spec:
  tls:
  - hosts: [a.test]
    secretName: a-tls
  - hosts: [b.test]
    secretName: b-tls
  rules:
  - host: a.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: {a_root}, port: {{number: 80}}}}}}}}
      - {{path: /b, pathType: Prefix, backend: {{service: {{name: b, port: {{name: web}}}}}}}}
  - host: b.test
    http:
      paths:
      - {{path: /, pathType: ImplementationSpecific, backend: {{service: {{name: b, port: {{name: web}}}}}}}}
  - host: gated.test
    http:
      paths:
      - {{path: /, pathType: Exact, backend: {{service: {{name: gated, port: {{number: 80}}}}}}}}
"
    )
}

const REDIRECT_INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: redirect
  annotations: {ingress.kubernetes.io/force-ssl-redirect: 'true'}
spec:
  ingressClassName: berth
  rules:
  - host: r.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}
";

#[test]
fn hosts_paths_tls_by_sni_redirect_503_forwarded_headers_and_in_flight_requests() {
    let (d, http, https) = daemon();
    d.import_busybox();

    // berth's IngressClass exists and is the default.
    let class = d
        .get_json(&["ingressclass", "berth"])
        .expect("ingress class berth");
    assert_eq!(class["spec"]["controller"], "berth.dev/ingress-controller");
    assert_eq!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );

    d.apply_yaml("a1", &web("a1", "a", false));
    d.apply_yaml("b1", &web("b1", "b", false));
    d.apply_yaml("gated1", &web("gated1", "gated", true));
    d.apply_yaml("svc-a", &service("a", ""));
    d.apply_yaml("svc-b", &service("b", "web"));
    d.apply_yaml("svc-gated", &service("gated", ""));
    let (a_cert, b_cert) = (cert(&d, "a.test"), cert(&d, "b.test"));
    d.apply_yaml("a-tls", &tls_secret("a-tls", &a_cert));
    d.apply_yaml("b-tls", &tls_secret("b-tls", &b_cert));
    d.apply_yaml("main", &main_ingress("a"));
    d.apply_yaml("redirect", REDIRECT_INGRESS);

    // Two hosts and two paths route to the right Services.
    let a_url = format!("http://a.test:{http}/");
    eventually(90, "a.test/ answered by pod a1", || {
        let (code, body, _) = curl("a.test", http, &a_url, &[]);
        (code == 200 && body == "pod a1\n").then_some(())
    });
    let ab_url = format!("http://a.test:{http}/b/index.html");
    eventually(60, "a.test/b answered by pod b1", || {
        let (code, body, _) = curl("a.test", http, &ab_url, &[]);
        (code == 200 && body == "pod b1\n").then_some(())
    });
    let b_url = format!("http://b.test:{http}/");
    eventually(60, "b.test/ answered by pod b1", || {
        let (code, body, _) = curl("b.test", http, &b_url, &[]);
        (code == 200 && body == "pod b1\n").then_some(())
    });
    // A host no rule names: 404.
    let (code, _, _) = curl("c.test", http, &format!("http://c.test:{http}/"), &[]);
    assert_eq!(code, 404);

    // TLS: each host gets its own certificate (curl trusts only that one).
    let a_ca = d.dir.path().join("a.test.crt");
    let b_ca = d.dir.path().join("b.test.crt");
    let (code, body, _) = curl(
        "a.test",
        https,
        &format!("https://a.test:{https}/"),
        &["--cacert", a_ca.to_str().unwrap()],
    );
    assert_eq!((code, body.as_str()), (200, "pod a1\n"));
    let (code, body, _) = curl(
        "b.test",
        https,
        &format!("https://b.test:{https}/"),
        &["--cacert", b_ca.to_str().unwrap()],
    );
    assert_eq!((code, body.as_str()), (200, "pod b1\n"));
    // b.test's certificate is not a.test's: trusting only a.test's fails verification.
    let (_, _, exit) = curl(
        "b.test",
        https,
        &format!("https://b.test:{https}/"),
        &["--cacert", a_ca.to_str().unwrap()],
    );
    assert_eq!(exit, 60, "curl: peer certificate cannot be authenticated");
    let subject = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{https} -servername b.test </dev/null 2>/dev/null | openssl x509 -noout -subject"
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&subject.stdout).contains("CN = b.test"),
        "{}",
        String::from_utf8_lossy(&subject.stdout)
    );

    // force-ssl-redirect: 308 to the same URL on HTTPS.
    let (code, _, _) = curl(
        "r.test",
        http,
        &format!("http://r.test:{http}/x/y?z=1"),
        &["-o", "/dev/null", "-D", "-"],
    );
    assert_eq!(code, 308);
    let headers = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{redirect_url}",
            "--resolve",
        ])
        .arg(format!("r.test:{http}:127.0.0.1"))
        .arg(format!("http://r.test:{http}/x/y?z=1"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&headers.stdout),
        format!("https://r.test:{https}/x/y?z=1")
    );
    // Over HTTPS it is served (with the first certificate, no SNI match).
    let (code, body, _) = curl(
        "r.test",
        https,
        &format!("https://r.test:{https}/"),
        &["-k"],
    );
    assert_eq!((code, body.as_str()), (200, "pod a1\n"));

    // No ready endpoint: 503, until the pod turns ready.
    let gated = format!("http://gated.test:{http}/");
    let (code, body, _) = curl("gated.test", http, &gated, &[]);
    assert_eq!(code, 503, "{body}");
    ok(&d.cli(&["exec", "gated1", "--", "touch", "/tmp/ready"]));
    eventually(60, "gated.test answered once its pod is ready", || {
        let (code, body, _) = curl("gated.test", http, &gated, &[]);
        (code == 200 && body == "pod gated1\n").then_some(())
    });
    // Exact: a longer path does not match, and nothing else does.
    let (code, _, _) = curl("gated.test", http, &format!("{gated}index.html"), &[]);
    assert_eq!(code, 404);

    // X-Forwarded-For (appended), -Proto and -Host reach the backend.
    let (code, body, _) = curl(
        "a.test",
        http,
        &format!("http://a.test:{http}/cgi-bin/env"),
        &["-H", "X-Forwarded-For: 198.51.100.7"],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body.trim(),
        format!("pod=a1 xff=198.51.100.7, 127.0.0.1 proto=http host=a.test:{http}")
    );
    let (_, body, _) = curl(
        "a.test",
        https,
        &format!("https://a.test:{https}/cgi-bin/env"),
        &["--cacert", a_ca.to_str().unwrap()],
    );
    assert_eq!(
        body.trim(),
        format!("pod=a1 xff=127.0.0.1 proto=https host=a.test:{https}")
    );

    // status.loadBalancer names the listen address and both ports.
    let lb = eventually(30, "the Ingress status", || {
        let ing = d.get_json(&["ingress", "main"])?;
        let lb = ing["status"]["loadBalancer"]["ingress"].clone();
        lb.is_array().then_some(lb)
    });
    assert_eq!(
        lb,
        serde_json::json!([{"ip": "127.0.0.1", "ports": [
            {"port": http, "protocol": "TCP"}, {"port": https, "protocol": "TCP"}]}])
    );

    // A request in flight survives a change of the Ingress that takes its route away.
    let slow_url = format!("http://a.test:{http}/cgi-bin/slow");
    let slow = std::thread::spawn(move || curl("a.test", http, &slow_url, &[]));
    eventually(30, "the slow request reached pod a1", || {
        d.cli(&["exec", "a1", "--", "test", "-e", "/tmp/started"])
            .status
            .success()
            .then_some(())
    });
    d.apply_yaml("main", &main_ingress("b"));
    eventually(30, "a.test/ now answered by pod b1", || {
        let (code, body, _) = curl("a.test", http, &a_url, &[]);
        (code == 200 && body == "pod b1\n").then_some(())
    });
    ok(&d.cli(&["exec", "a1", "--", "touch", "/tmp/go"]));
    let (code, body, _) = slow.join().unwrap();
    assert_eq!((code, body.as_str()), (200, "slow answer from a1\n"));

    d.remove_all_pods();
}

#[test]
fn websocket_echo_through_the_ingress() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let (d, http, _) = daemon();
    let cidr: berth::network::Ipv4Net = d.net.pod_cidr.parse().unwrap();
    let gateway = cidr.gateway();
    // Multi-threaded: the echo server runs while the test thread waits on curl.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // The echo server, on the daemon's bridge address (the host side of the pod network);
    // the daemon creates the bridge at start.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind((gateway, 0)))
        .expect("listen on the bridge address");
    let echo_port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    d.apply_yaml(
        "ws",
        &format!(
            "apiVersion: v1
kind: Service
metadata:
  name: ws
spec:
  ports: [{{port: 80, targetPort: {echo_port}}}]
---
apiVersion: v1
kind: Endpoints
metadata:
  name: ws
subsets:
- addresses: [{{ip: {gateway}}}]
  ports: [{{port: {echo_port}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ws
spec:
  rules:
  - host: ws.test
    http:
      paths:
      - {{path: /echo, pathType: Prefix, backend: {{service: {{name: ws, port: {{number: 80}}}}}}}}
"
        ),
    );
    // Plain requests reach the echo server too (it refuses them: not a WebSocket handshake);
    // wait until the route is there.
    eventually(60, "ws.test routed", || {
        let (code, _, _) = curl("ws.test", http, &format!("http://ws.test:{http}/echo"), &[]);
        (code != 404 && code != 503 && code != 0).then_some(())
    });
    let reply = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", http))
            .await
            .expect("connect to the ingress");
        let (mut ws, resp) =
            tokio_tungstenite::client_async(format!("ws://ws.test:{http}/echo"), stream)
                .await
                .expect("websocket handshake through the ingress");
        assert_eq!(resp.status(), 101);
        let mut got = Vec::new();
        for text in ["hello", "through berth"] {
            ws.send(Message::text(text)).await.expect("send");
            let m = ws.next().await.expect("a reply").expect("a message");
            got.push(m.into_text().expect("text").to_string());
        }
        let _ = ws.close(None).await;
        got
    });
    assert_eq!(reply, ["hello", "through berth"]);

    // A backend that refuses the connection: 502.
    let closed_port = rt
        .block_on(tokio::net::TcpListener::bind((gateway, 0)))
        .and_then(|l| l.local_addr())
        .expect("a free port on the bridge address")
        .port();
    d.apply_yaml(
        "closed",
        &format!(
            "apiVersion: v1
kind: Service
metadata:
  name: closed
spec:
  ports: [{{port: 80, targetPort: {closed_port}}}]
---
apiVersion: v1
kind: Endpoints
metadata:
  name: closed
subsets:
- addresses: [{{ip: {gateway}}}]
  ports: [{{port: {closed_port}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: closed
spec:
  tls: [{{hosts: [closed.test], secretName: missing-tls}}]
  rules:
  - host: closed.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: closed, port: {{number: 80}}}}}}}}
      - {{path: /missing, pathType: Prefix, backend: {{service: {{name: missing, port: {{number: 80}}}}}}}}
"
        ),
    );
    let url = format!("http://closed.test:{http}/");
    eventually(60, "closed.test answered 502", || {
        let (code, _, _) = curl("closed.test", http, &url, &[]);
        (code == 502).then_some(())
    });

    // A Service that does not exist: 503, and Warning events name it and the missing
    // TLS Secret.
    let (code, body, _) = curl("closed.test", http, &format!("{url}missing"), &[]);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("service \"missing\" not found"), "{body}");
    eventually(30, "warning events on the Ingress", || {
        let events = d.get_json(&["events"])?;
        let reasons: Vec<String> = events["items"]
            .as_array()?
            .iter()
            .filter(|e| e["involvedObject"]["name"] == "closed" && e["type"] == "Warning")
            .map(|e| {
                format!(
                    "{}: {}",
                    e["reason"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        (reasons
            .iter()
            .any(|r| r.starts_with("BackendUnavailable: service \"missing\" not found"))
            && reasons
                .iter()
                .any(|r| r.starts_with("InvalidTLSSecret: secret default/missing-tls not found")))
        .then_some(())
    });
}
