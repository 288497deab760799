//! Security and hostile clients, against the real `weft` binary: TLS and mutual TLS on both
//! OTLP receivers with certificates generated here, the `bearertokenauth` extension (token
//! from the environment) with the data read back from a `file` exporter, secrets kept out of
//! the log and of `weft validate`, a slowloris client cut off by `read_header_timeout`, and
//! connections beyond `max_connections` refused while the others are still served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tonic::Code;
use weft_integration_tests::{
    eventually, free_port, http_get, metric_value, weft_binary, weft_validate, Weft,
};
use weft_proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::otlp_json;
use weft_proto::status::code;
use weft_proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

const PROTOBUF: &str = "application/x-protobuf";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One span named `name`, so each accepted request can be found in the output.
fn spans(name: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![0x5e; 16],
                    span_id: vec![0x11; 8],
                    name: name.to_string(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A test PKI: a CA, a server certificate for localhost/127.0.0.1 and a client certificate,
/// all signed by the CA, written as PEM files into `dir`.
struct Pki {
    ca: String,
    client_cert: String,
    client_key: String,
}

fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "weft security test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer).unwrap().pem();

    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(vec!["sdk-client".to_string()]).unwrap();
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer).unwrap().pem();

    std::fs::write(dir.join("ca.crt"), &ca).unwrap();
    std::fs::write(dir.join("server.crt"), &server_cert).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    Pki {
        ca,
        client_cert,
        client_key: client_key.serialize_pem(),
    }
}

/// A config with both OTLP receivers (each given `extra` lines, already indented for the
/// protocol's section), traces to a `file` exporter in `dir`, and metrics on `metrics`.
fn config(
    grpc: u16,
    http: u16,
    metrics: u16,
    dir: &Path,
    grpc_extra: &str,
    http_extra: &str,
    top: &str,
) -> String {
    format!(
        r#"
{top}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
{grpc_extra}
      http:
        endpoint: 127.0.0.1:{http}
{http_extra}
exporters:
  file:
    path: {out}
    flush_interval: 0
service:
  {service_extensions}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        out = dir.join("traces.jsonl").display(),
        service_extensions = if top.contains("bearertokenauth") {
            "extensions: [bearertokenauth]"
        } else {
            ""
        },
    )
}

/// The names of the spans the `file` exporter wrote.
fn written_span_names(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("traces.jsonl")).unwrap_or_default();
    let mut names = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let request = otlp_json::decode_traces(line.as_bytes()).expect("OTLP/JSON lines");
        for rs in request.resource_spans {
            for ss in rs.scope_spans {
                names.extend(ss.spans.into_iter().map(|s| s.name));
            }
        }
    }
    names.sort();
    names
}

/// A TLS gRPC channel trusting `ca`, optionally presenting a client certificate.
async fn tls_channel(
    addr: SocketAddr,
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    tonic::transport::Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// An export over a TLS channel: `Err` when the connection or the call fails.
async fn export_tls(
    addr: SocketAddr,
    ca: &str,
    identity: Option<(&str, &str)>,
    name: &str,
) -> Result<(), String> {
    let channel = tls_channel(addr, ca, identity)
        .await
        .map_err(|e| e.to_string())?;
    TraceServiceClient::new(channel)
        .export(spans(name))
        .await
        .map(|_| ())
        .map_err(|s| s.to_string())
}

/// An export over plaintext gRPC: `Err` when the connection or the call fails.
async fn export_plain(addr: SocketAddr, name: &str) -> Result<(), String> {
    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .map_err(|e| e.to_string())?;
    client
        .export(spans(name))
        .await
        .map(|_| ())
        .map_err(|s| s.to_string())
}

/// An HTTPS client trusting `ca` only, optionally presenting a client certificate.
fn https_client(ca: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .timeout(Duration::from_secs(20));
    if let Some((cert, key)) = identity {
        let pem = format!("{cert}\n{key}");
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    token: Option<&str>,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut request = client
        .post(url)
        .header("content-type", PROTOBUF)
        .body(spans(name).encode_to_vec());
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    request.send().await
}

#[test]
fn tls_on_both_receivers_accepts_the_test_ca_and_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let certs = dir.path().to_path_buf();
    // The output outlives weft, whose own temp dir (`dir`) goes with it.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_path_buf();
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let tls = format!(
        "        tls:\n          cert_file: {d}/server.crt\n          key_file: {d}/server.key\n          min_version: \"1.2\"",
        d = certs.display()
    );
    let weft = Weft::start_in(
        dir,
        &config(grpc, http, metrics, &out, &tls, &tls, ""),
        &[local(grpc), local(http)],
    )
    .unwrap();
    let rt = runtime();
    rt.block_on(async {
        export_tls(local(grpc), &pki.ca, None, "grpc-tls")
            .await
            .expect("TLS gRPC with the test CA is accepted");
        let response = post(
            &https_client(&pki.ca, None),
            &format!("https://127.0.0.1:{http}/v1/traces"),
            "https",
            None,
        )
        .await
        .expect("HTTPS with the test CA is accepted");
        assert_eq!(response.status(), 200);

        // Plaintext to the TLS ports: no answer, nothing accepted.
        assert!(export_plain(local(grpc), "grpc-plain").await.is_err());
        let plain = post(
            &reqwest::Client::new(),
            &format!("http://127.0.0.1:{http}/v1/traces"),
            "http-plain",
            None,
        )
        .await;
        assert!(plain.is_err(), "{plain:?}");
    });
    let (status, log) = weft.terminate().unwrap();
    assert!(status.success(), "{log}");
    assert_eq!(written_span_names(&out), ["grpc-tls", "https"], "{log}");
}

#[test]
fn mtls_refuses_clients_without_a_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let certs = dir.path().to_path_buf();
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = make_pki(stranger_dir.path());
    // The output outlives weft, whose own temp dir (`dir`) goes with it.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_path_buf();
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let tls = format!(
        "        tls:\n          cert_file: {d}/server.crt\n          key_file: {d}/server.key\n          client_ca_file: {d}/ca.crt",
        d = certs.display()
    );
    let weft = Weft::start_in(
        dir,
        &config(grpc, http, metrics, &out, &tls, &tls, ""),
        &[local(grpc), local(http)],
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{http}/v1/traces");
    let ours = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let theirs = Some((stranger.client_cert.as_str(), stranger.client_key.as_str()));
    let rt = runtime();
    rt.block_on(async {
        // No client certificate, or one another CA signed: refused on both protocols.
        for identity in [None, theirs] {
            assert!(export_tls(local(grpc), &pki.ca, identity, "refused")
                .await
                .is_err());
            assert!(
                post(&https_client(&pki.ca, identity), &url, "refused", None)
                    .await
                    .is_err()
            );
        }
        // Signed by the client CA: accepted.
        export_tls(local(grpc), &pki.ca, ours, "grpc-mtls")
            .await
            .expect("a client certificate from the client CA is accepted over gRPC");
        let response = post(&https_client(&pki.ca, ours), &url, "https-mtls", None)
            .await
            .expect("a client certificate from the client CA is accepted over HTTPS");
        assert_eq!(response.status(), 200);
    });
    let (_, log) = weft.terminate().unwrap();
    assert_eq!(
        written_span_names(&out),
        ["grpc-mtls", "https-mtls"],
        "{log}"
    );
}

#[test]
fn a_missing_certificate_fails_the_start_naming_the_file() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_path_buf();
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let tls = format!(
        "        tls:\n          cert_file: {d}/absent.crt\n          key_file: {d}/absent.key",
        d = out.display()
    );
    let path = out.join("weft.yaml");
    std::fs::write(&path, config(grpc, http, metrics, &out, "", &tls, "")).unwrap();
    let mut child = Command::new(weft_binary())
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = eventually(Duration::from_secs(30), || child.try_wait().unwrap());
    if exited.is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(exited.is_some_and(|s| !s.success()), "{text}");
    assert!(
        text.contains("receivers::otlp::protocols::http::tls::cert_file: cannot read")
            && text.contains("absent.crt"),
        "{text}"
    );
}

const TOKEN: &str = "weft-test-token-4f1c9a";

#[test]
fn bearer_token_auth_guards_both_receivers_and_never_shows_the_token() {
    let dir = tempfile::tempdir().unwrap();
    // The output outlives weft, whose own temp dir (`dir`) goes with it.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_path_buf();
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let auth = "        auth:\n          authenticator: bearertokenauth";
    let top = "extensions:\n  bearertokenauth:\n    token: ${env:WEFT_TEST_TOKEN}";
    let cfg = config(grpc, http, metrics, &out, auth, auth, top);
    let weft = Weft::start_in_with_env(
        dir,
        &cfg,
        &[local(grpc), local(http)],
        &[("WEFT_TEST_TOKEN", TOKEN)],
    )
    .unwrap();
    let right = format!("Bearer {TOKEN}");
    let rt = runtime();
    rt.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .unwrap();
        for token in [None, Some("Bearer wrong-token"), Some(TOKEN)] {
            let mut request = tonic::Request::new(spans("refused"));
            if let Some(token) = token {
                request
                    .metadata_mut()
                    .insert("authorization", token.parse().unwrap());
            }
            let status = client.export(request).await.unwrap_err();
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{token:?}: {status:?}"
            );
        }
        let mut request = tonic::Request::new(spans("grpc-authorized"));
        request
            .metadata_mut()
            .insert("authorization", right.parse().unwrap());
        client
            .export(request)
            .await
            .expect("the right token is accepted");

        let url = format!("http://127.0.0.1:{http}/v1/traces");
        let plain = reqwest::Client::new();
        for token in [None, Some("Bearer wrong-token")] {
            let response = post(&plain, &url, "refused", token).await.unwrap();
            assert_eq!(response.status(), 401, "{token:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let status = weft_proto::status::Status::decode(response.bytes().await.unwrap())
                .expect("a protobuf google.rpc.Status body");
            assert_eq!(status.code, code::UNAUTHENTICATED);
        }
        let response = post(&plain, &url, "http-authorized", Some(&right))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    });
    let (_, metrics_text) = http_get(local(metrics), "/metrics").unwrap();
    for transport in ["grpc", "http"] {
        let series = format!(
            "weft_receiver_requests_refused_total{{receiver=\"otlp\",transport=\"{transport}\",reason=\"unauthenticated\"}}"
        );
        let expected = if transport == "grpc" { 3.0 } else { 2.0 };
        assert_eq!(
            metric_value(&metrics_text, &series),
            Some(expected),
            "{metrics_text}"
        );
    }
    let (_, log) = weft.terminate().unwrap();
    assert_eq!(
        written_span_names(&out),
        ["grpc-authorized", "http-authorized"],
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");

    // `weft validate` prints its diagnostics; the token is never one of them, neither in a
    // configuration with other errors nor as a wrongly typed value.
    let broken = cfg.replace("flush_interval: 0", "flush_interval: 0\n    colour: blue");
    let (status, text) = weft_validate(&broken, &[("WEFT_TEST_TOKEN", TOKEN)]).unwrap();
    assert_eq!(status, 1, "{text}");
    assert!(text.contains("exporters::file"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    let typed = cfg.replace(
        "token: ${env:WEFT_TEST_TOKEN}",
        &format!("token: {{inline: {TOKEN}}}"),
    );
    let (status, text) = weft_validate(&typed, &[]).unwrap();
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("extensions::bearertokenauth::token"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
}

/// One HTTP/1.1 POST on an open connection; the status code of the answer.
fn raw_post(stream: &mut TcpStream, name: &str) -> anyhow::Result<u16> {
    let body = spans(name).encode_to_vec();
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nHost: weft\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf)?;
        anyhow::ensure!(n > 0, "connection closed before an answer");
        received.extend_from_slice(&buf[..n]);
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status line in {head:?}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while received.len() < head_end + length {
        let n = stream.read(&mut buf)?;
        anyhow::ensure!(n > 0, "connection closed in the answer's body");
        received.extend_from_slice(&buf[..n]);
    }
    Ok(status)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    // A guard against a server that never answers; no assertion depends on it.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// True when the server closed `stream` (EOF or reset) rather than leaving it open.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn a_slowloris_is_cut_off_at_read_header_timeout_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    // The output outlives weft, whose own temp dir (`dir`) goes with it.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_path_buf();
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let http_extra = "        read_header_timeout: 1s";
    let weft = Weft::start_in(
        dir,
        &config(grpc, http, metrics, &out, "", http_extra, ""),
        &[local(grpc), local(http)],
    )
    .unwrap();
    let addr = local(http);
    // Headers byte by byte, 100 ms apart: about 9 s for the whole head, far past 1 s.
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: weft\r\nContent-Type: {PROTOBUF}\r\nContent-Length: 2\r\n\r\n"
    );
    let slow = std::thread::spawn(move || {
        let mut stream = connect(addr);
        let mut sent = 0;
        for b in head.bytes() {
            if stream.write_all(&[b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        let closed = closed_by_server(&mut stream);
        (sent, head.len(), closed)
    });
    // Meanwhile, a well-behaved client is served.
    let mut good = connect(addr);
    assert_eq!(raw_post(&mut good, "while-slow").unwrap(), 200);
    let (sent, total, closed) = slow.join().unwrap();
    assert!(
        sent < total,
        "the slow client sent its whole head ({sent} bytes) without being cut off"
    );
    assert!(closed, "the slow client's connection was not closed");
    // And after.
    let mut good = connect(addr);
    assert_eq!(raw_post(&mut good, "after-slow").unwrap(), 200);
    let (_, log) = weft.terminate().unwrap();
    assert_eq!(
        written_span_names(&out),
        ["after-slow", "while-slow"],
        "{log}"
    );
}

#[test]
fn connections_beyond_max_connections_are_refused_and_the_others_served() {
    let dir = tempfile::tempdir().unwrap();
    // The output outlives weft, whose own temp dir (`dir`) goes with it.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_path_buf();
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let http_extra =
        "        max_connections: 2\n        read_header_timeout: 60s\n        idle_timeout: 60s";
    let weft = Weft::start_in(
        dir,
        &config(grpc, http, metrics, &out, "", http_extra, ""),
        &[local(grpc), local(http)],
    )
    .unwrap();
    let addr = local(http);
    // `wait_for_port` connected once, and its slot frees only once the server has seen that
    // probe close. Until then one of the two connections below may be refused: retry each
    // until it is served. Two served connections hold both slots, so the probe's is free.
    let served = |name: &'static str| {
        eventually(Duration::from_secs(10), || {
            let mut c = connect(addr);
            match raw_post(&mut c, name) {
                Ok(200) => Some(c),
                _ => None,
            }
        })
    };
    let mut first = served("first").expect("a first connection is served");
    let mut second = served("second").expect("a second connection is served");

    // Both slots are held (each connection completed a request): a third is closed at once.
    let mut third = connect(addr);
    let refused = raw_post(&mut third, "third");
    assert!(refused.is_err(), "{refused:?}");

    // The held connections are still served.
    assert_eq!(raw_post(&mut first, "first-again").unwrap(), 200);
    assert_eq!(raw_post(&mut second, "second-again").unwrap(), 200);

    // A slot frees once a connection closes.
    drop(first);
    let mut fourth = served("fourth").expect("a connection is served once a slot is free");
    assert_eq!(raw_post(&mut fourth, "fourth-again").unwrap(), 200);

    let (_, text) = http_get(local(metrics), "/metrics").unwrap();
    let refused = metric_value(
        &text,
        "weft_receiver_connections_refused_total{receiver=\"otlp\",transport=\"http\"}",
    )
    .unwrap_or(0.0);
    assert!(refused >= 1.0, "{text}");
    drop((second, fourth, third));
    let (_, log) = weft.terminate().unwrap();
    let names = written_span_names(&out);
    assert!(!names.contains(&"third".to_string()), "{names:?}");
    for expected in [
        "first-again",
        "fourth",
        "fourth-again",
        "second",
        "second-again",
    ] {
        assert!(names.contains(&expected.to_string()), "{names:?}\n{log}");
    }
}
