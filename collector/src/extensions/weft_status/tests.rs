//! The status page's server and JSON, against a real `tail_sampling` window on an injected
//! clock and real HTTP requests. What a browser makes of the page is the integration test's
//! (`integration-tests/tests/status_page.rs`, headless Chromium).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use serde_json::Value;
use weft_config::{ComponentId, ConfigPath, Diagnostics, Kind, PipelineId};
use weft_proto::collector::logs::v1::ExportLogsServiceRequest;
use weft_proto::collector::trace::v1::ExportTraceServiceRequest;
use weft_proto::common::v1::{any_value, AnyValue, KeyValue};
use weft_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use weft_proto::resource::v1::Resource;
use weft_proto::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};

use super::*;
use crate::component::{PipelineGraph, ServiceGraph};
use crate::pipeline::{Logs, Traces};
use crate::processors::tail_sampling::config::TailSamplingConfig;
use crate::redaction::Redact;

const WAIT: Duration = Duration::from_secs(5);

fn decode<C: ComponentConfig>(yaml: &str) -> (Option<C>, Diagnostics) {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
    let mut diags = Diagnostics::new();
    let path = ConfigPath::root().key("extensions").key("weft_status");
    let cfg = weft_config::decode_component::<C>(&value, &path, &mut diags);
    (cfg, diags)
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn tid(n: u8) -> Vec<u8> {
    let mut id = vec![0x5a; 16];
    id[15] = n;
    id
}

fn span(t: u8, id: u8, parent: u8, name: &str, ms: u64, error: bool) -> Span {
    Span {
        trace_id: tid(t),
        span_id: vec![id; 8],
        parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
        name: name.into(),
        start_time_unix_nano: 1_000_000_000 + u64::from(id) * 1_000_000,
        end_time_unix_nano: 1_000_000_000 + (u64::from(id) + ms) * 1_000_000,
        status: Some(Status {
            code: if error {
                status::StatusCode::Error as i32
            } else {
                status::StatusCode::Ok as i32
            },
            message: String::new(),
        }),
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> Traces {
    Traces::from(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("checkout"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn log(t: u8, span: u8, severity: i32, body: &str, attributes: Vec<KeyValue>) -> Logs {
    Logs::from(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("payments"))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    trace_id: tid(t),
                    span_id: vec![span; 8],
                    severity_number: severity,
                    severity_text: if severity >= 17 { "ERROR" } else { "INFO" }.into(),
                    body: Some(AnyValue {
                        value: Some(s(body)),
                    }),
                    attributes,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// A window with the demo's policies, registered in `shared` as the service would.
fn window(shared: &SharedInstances, telemetry: &Telemetry) -> Arc<TailSampling> {
    let (cfg, diags) = decode::<TailSamplingConfig>(
        "decision_wait: 5s
attach_logs_wait: 0s
policies:
  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
  - {name: slow, type: latency, latency: {threshold_ms: 1000}}",
    );
    assert!(!diags.has_errors(), "{diags}");
    let ctx = BuildContext::standalone("tail_sampling", Kind::Processor).with_telemetry(telemetry);
    let core = TailSampling::new(&ctx, cfg.unwrap(), Arc::new(Instant::now)).unwrap();
    shared
        .get_or_try_insert(&"tail_sampling".parse().unwrap(), || Ok(Arc::new(core)))
        .unwrap()
}

struct Page {
    ext: WeftStatus,
    base: String,
    core: Arc<TailSampling>,
    shared: SharedInstances,
    telemetry: Telemetry,
}

impl Page {
    async fn start(yaml: &str, before: impl FnOnce(&SharedInstances)) -> Self {
        let telemetry = Telemetry::new();
        let shared = SharedInstances::default();
        let core = window(&shared, &telemetry);
        before(&shared);
        let (cfg, diags) = decode::<Config>(yaml);
        assert!(!diags.has_errors(), "{diags}");
        let mut ctx =
            BuildContext::standalone("weft_status", Kind::Extension).with_telemetry(&telemetry);
        ctx.shared = shared.clone();
        let ext = WeftStatus::new(ctx, &cfg.unwrap());
        ext.start().await.expect("starts");
        let base = format!("http://{}", ext.local_addr().unwrap());
        Self {
            ext,
            base,
            core,
            shared,
            telemetry,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = client()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        (code, serde_json::from_str(&text).expect(&text))
    }

    /// An error trace (kept, with an ERROR log on its child span) and an OK one (dropped),
    /// decided.
    fn decide_two(&self) {
        let w = self.core.window();
        let t0 = Instant::now();
        w.ingest_spans(
            traces(vec![
                span(1, 1, 0, "POST /orders", 40, false),
                span(1, 2, 1, "Charge", 10, true),
                span(2, 3, 0, "GET /health", 2, false),
            ]),
            t0,
        );
        w.ingest_logs(log(1, 2, 17, "payment failed: card declined", vec![]), t0);
        w.tick(t0 + WAIT);
    }
}

const LOCAL: &str = "endpoint: 127.0.0.1:0\n";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[test]
fn config_defaults_and_every_problem_with_its_path() {
    let (cfg, diags) = decode::<Config>("");
    let cfg = cfg.unwrap();
    assert!(!diags.has_errors());
    assert_eq!(cfg.endpoint.to_string(), "localhost:55679");
    assert_eq!(cfg.decisions.size, 10_000);
    assert!(!cfg.decisions.keep_dropped_detail);
    assert_eq!(cfg.decisions.detail_max_bytes.0, 64 << 20);

    let (_, diags) = decode::<Config>(
        r#"
auth: {authenticator: ""}
decisions: {size: 0}
max_value_bytes: 3
links:
  - {text: Jaeger, url: "javascript:alert(1)"}
  - {text: "", url: "http://jaeger/trace/"}
  - {text: Kibana, url: "https://admin:secret@kibana/app/discover#/?q={trace_id}"}
  - {text: Tempo, url: "http://tempo/{trace_id}?from={start}"}
"#,
    );
    let text = diags.to_string();
    for expected in [
        "extensions::weft_status::auth::authenticator: name the authenticator extension",
        "extensions::weft_status::decisions::size: must be from 1 to 1000000, got 0",
        "extensions::weft_status::max_value_bytes: must be at least 16 bytes",
        "extensions::weft_status::links[0]::url: must start with http:// or https://",
        "extensions::weft_status::links[1]::text: required",
        "extensions::weft_status::links[1]::url: must contain {trace_id}",
        "extensions::weft_status::links[2]::url: must not hold credentials",
        "extensions::weft_status::links[3]::url: unknown placeholder {start}",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // Nothing from the config is echoed: the credentials of the refused link are not shown.
    assert!(!text.contains("secret"), "{text}");
    let (_, diags) = decode::<Config>("decisions: {sise: 3}");
    assert!(diags.to_string().contains("unknown field"), "{diags}");
    // Kibana's rison links are fine.
    assert!(check_link(
        "https://kibana/app/discover#/?_a=(query:(language:kuery,query:'trace_id:\"{trace_id}\"'))"
    )
    .is_ok());
}

#[tokio::test]
async fn serves_the_app_with_its_security_headers_and_refuses_writes() {
    let page = Page::start(LOCAL, |_| {}).await;
    let r = client().get(&page.base).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    assert!(html.contains("/static/app.js"));
    let js = client()
        .get(format!("{}/static/app.js", page.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for markup in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
    ] {
        assert!(
            !js.contains(markup),
            "values are written as text only: {markup}"
        );
    }
    let post = client()
        .post(format!("{}/api/decisions", page.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    let (code, body) = page.get("/nothing/here").await;
    assert_eq!(code, 404);
    assert!(body["error"].as_str().unwrap().contains("/#/pipelines"));
    page.ext.shutdown(deadline()).await.unwrap();
}

#[tokio::test]
async fn decisions_are_listed_newest_first_and_filtered() {
    let page = Page::start(LOCAL, |_| {}).await;
    page.decide_two();
    let (code, all) = page.get("/api/decisions").await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["matching"], 2);
    assert_eq!(all["policies"], serde_json::json!(["errors", "slow"]));
    assert_eq!(all["services"], serde_json::json!(["checkout"]));
    let kept_id = hex::encode(tid(1));
    let (_, kept) = page.get("/api/decisions?verdict=kept").await;
    let list = kept["decisions"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["trace_id"], kept_id);
    assert_eq!(list[0]["decided_by"], "errors");
    assert_eq!(list[0]["root_operation"], "POST /orders");
    assert_eq!(list[0]["error"], true);
    assert_eq!(
        (
            list[0]["span_count"].as_i64(),
            list[0]["log_count"].as_i64()
        ),
        (Some(2), Some(1))
    );
    let (_, dropped) = page.get("/api/decisions?verdict=dropped").await;
    assert_eq!(dropped["decisions"][0]["trace_id"], hex::encode(tid(2)));
    assert_eq!(dropped["decisions"][0]["decided_by"], Value::Null);
    let (_, by_policy) = page.get("/api/decisions?policy=errors").await;
    assert_eq!(by_policy["matching"], 1);
    let (_, by_id) = page
        .get(&format!("/api/decisions?q={}", hex::encode(tid(2))))
        .await;
    assert_eq!(by_id["matching"], 1);
    let (_, none) = page.get("/api/decisions?service=inventory").await;
    assert_eq!(none["matching"], 0);
    let (code, bad) = page.get("/api/decisions?verdict=maybe").await;
    assert_eq!(code, 400);
    assert!(bad["error"]
        .as_str()
        .unwrap()
        .contains("expected kept, dropped or all"));
    let (code, _) = page.get("/api/decisions?q=not-hex").await;
    assert_eq!(code, 400);
    page.ext.shutdown(deadline()).await.unwrap();
}

#[tokio::test]
async fn a_trace_shows_its_verdict_every_reason_and_its_logs_on_their_span() {
    let yaml = format!(
        "{LOCAL}links: [{{text: Jaeger, url: \"http://127.0.0.1:16686/trace/{{trace_id}}\"}}]\n"
    );
    let page = Page::start(&yaml, |_| {}).await;
    page.decide_two();
    let id = hex::encode(tid(1));
    let (code, t) = page
        .get(&format!("/api/traces/{}", id.to_uppercase()))
        .await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["decision"]["verdict"], "kept");
    assert_eq!(t["decision"]["decided_by"], "errors");
    assert_eq!(t["decision"]["decided_because"], "decision_wait");
    let policies = t["policies"].as_array().unwrap();
    assert_eq!(policies[0]["name"], "errors");
    assert_eq!(policies[0]["type"], "status_code");
    assert_eq!(policies[0]["reason"], "span #2 \"Charge\" has status ERROR");
    assert_eq!(policies[0]["for_the_trace"], true);
    assert_eq!(policies[1]["reason"], "lasted 40 ms < 1 s");
    assert_eq!(policies[1]["for_the_trace"], false);
    assert_eq!(
        t["links"][0]["url"],
        format!("http://127.0.0.1:16686/trace/{id}")
    );
    let spans = t["detail"]["spans"].as_array().unwrap();
    let names: Vec<(&str, i64)> = spans
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["depth"].as_i64().unwrap()))
        .collect();
    assert_eq!(names, [("POST /orders", 0), ("Charge", 1)]);
    assert_eq!(spans[1]["status"]["code"], "error");
    assert_eq!(spans[1]["service"], "checkout");
    assert!(spans[0]["logs"].as_array().unwrap().is_empty());
    let log = &spans[1]["logs"][0];
    assert_eq!(log["body"], "payment failed: card declined");
    assert_eq!(log["class"], "error");
    assert_eq!(log["severity"], "ERROR");

    // The dropped trace: its summary and why, no detail by default.
    let (_, d) = page
        .get(&format!("/api/traces/{}", hex::encode(tid(2))))
        .await;
    assert_eq!(d["decision"]["verdict"], "dropped");
    assert_eq!(
        d["policies"][0]["reason"],
        "none of 1 span(s) has status ERROR"
    );
    assert_eq!(d["detail"], Value::Null);
    assert!(d["detail_note"]
        .as_str()
        .unwrap()
        .contains("keep_dropped_detail"));
    page.ext.shutdown(deadline()).await.unwrap();
}

#[tokio::test]
async fn an_unknown_or_pending_trace_and_a_bad_id_get_clear_answers() {
    let page = Page::start(&format!("{LOCAL}decisions: {{size: 50}}\n"), |_| {}).await;
    page.decide_two();
    let unknown = hex::encode([7u8; 16]);
    let (code, body) = page.get(&format!("/api/traces/{unknown}")).await;
    assert_eq!(code, 404);
    assert_eq!(
        body["error"],
        format!(
            "trace {unknown} is not in the last 2 decisions of tail_sampling: it was decided before those, or never reached this Weft"
        )
    );
    page.core.window().ingest_spans(
        traces(vec![span(9, 1, 0, "waiting", 1, false)]),
        Instant::now(),
    );
    let (code, body) = page
        .get(&format!("/api/traces/{}", hex::encode(tid(9))))
        .await;
    assert_eq!(code, 404);
    assert_eq!(body["pending"], true);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("is not decided yet"));
    let (code, body) = page.get("/api/traces/%3Cscript%3E").await;
    assert_eq!(code, 400);
    assert_eq!(
        body["error"],
        "\"<script>\" is not a trace id: expected 32 hex digits"
    );
    page.ext.shutdown(deadline()).await.unwrap();
}

#[tokio::test]
async fn a_huge_value_is_cut_and_redaction_rules_apply() {
    struct MaskCard;
    impl Redact for MaskCard {
        fn redact_attributes(&self, attributes: &mut Vec<KeyValue>) {
            for a in attributes.iter_mut().filter(|a| a.key == "card") {
                a.value = Some(AnyValue {
                    value: Some(s("****")),
                });
            }
        }
        fn redact_body(&self, body: &mut AnyValue) {
            if let Some(any_value::Value::StringValue(text)) = &mut body.value {
                *text = text.replace("4111111111111111", "****");
            }
        }
    }
    let page = Page::start(&format!("{LOCAL}max_value_bytes: 1KiB\n"), |shared| {
        crate::redaction::register(shared, &"redaction".parse().unwrap(), Arc::new(MaskCard));
    })
    .await;
    let w = page.core.window();
    let t0 = Instant::now();
    let mut big = span(3, 1, 0, "upload", 5, true);
    big.attributes = vec![
        kv("payload", s(&"x".repeat(5 << 20))),
        kv("card", s("4111111111111111")),
    ];
    w.ingest_spans(traces(vec![big]), t0);
    w.ingest_logs(
        log(
            3,
            1,
            17,
            "charge of 4111111111111111 failed",
            vec![kv("card", s("4111111111111111"))],
        ),
        t0,
    );
    w.tick(t0 + WAIT);
    let (code, t) = page
        .get(&format!("/api/traces/{}", hex::encode(tid(3))))
        .await;
    assert_eq!(code, 200);
    let attributes = &t["detail"]["spans"][0]["attributes"];
    let payload = &attributes[0]["value"];
    assert_eq!(payload["cut_from_bytes"], 5 << 20);
    assert!(payload["text"].as_str().unwrap().len() <= 1024 + 3);
    assert_eq!(attributes[1]["value"], "****");
    let log = &t["detail"]["spans"][0]["logs"][0];
    assert_eq!(log["body"], "charge of **** failed");
    assert_eq!(log["attributes"][0]["value"], "****");
    assert!(!t.to_string().contains("4111111111111111"));
    page.ext.shutdown(deadline()).await.unwrap();
}

#[tokio::test]
async fn an_authenticator_guards_every_request() {
    struct Token;
    impl ServerAuthenticator for Token {
        fn authenticate(&self, headers: &HeaderMap) -> Result<(), String> {
            match headers.get("authorization").map(|v| v.to_str()) {
                Some(Ok("Bearer s3cret")) => Ok(()),
                _ => Err("missing or wrong bearer token".into()),
            }
        }
        fn challenge(&self) -> String {
            "Bearer".into()
        }
    }
    let page = Page::start(
        &format!("{LOCAL}auth: {{authenticator: bearertokenauth}}\n"),
        |shared| {
            auth::register(shared, &"bearertokenauth".parse().unwrap(), Arc::new(Token)).unwrap();
        },
    )
    .await;
    for path in ["/", "/static/app.js", "/api/decisions", "/api/traces/x"] {
        let r = client()
            .get(format!("{}{path}", page.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    let r = client()
        .get(format!("{}/api/decisions", page.base))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    page.ext.shutdown(deadline()).await.unwrap();

    // A missing authenticator fails the start, naming it.
    let mut ctx = BuildContext::standalone("weft_status", Kind::Extension);
    ctx.shared = SharedInstances::default();
    let (cfg, _) = decode::<Config>(&format!(
        "{LOCAL}auth: {{authenticator: bearertokenauth/x}}\n"
    ));
    let ext = WeftStatus::new(ctx, &cfg.unwrap());
    let err = ext.start().await.unwrap_err().to_string();
    assert!(
        err.contains("authenticator \"bearertokenauth/x\" is not running"),
        "{err}"
    );
}

#[tokio::test]
async fn the_pipelines_and_window_views_read_the_graph_and_the_counters() {
    let page = Page::start(LOCAL, |shared| {
        let id = |s: &str| s.parse::<ComponentId>().unwrap();
        shared.set_service_graph(ServiceGraph {
            pipelines: vec![PipelineGraph {
                id: "traces".parse::<PipelineId>().unwrap(),
                receivers: vec![id("otlp")],
                processors: vec![id("tail_sampling")],
                exporters: vec![id("otlp/jaeger")],
            }],
            extensions: vec![id("weft_status")],
            connectors: vec![],
        });
    })
    .await;
    let t = &page.telemetry;
    crate::telemetry::ReceiverMetrics::new(t, "otlp", "grpc", "spans")
        .accepted
        .inc_by(30);
    crate::telemetry::ReceiverMetrics::new(t, "otlp", "http", "spans")
        .accepted
        .inc_by(12);
    let exporter = crate::telemetry::ExporterMetrics::new(t, "otlp/jaeger", "spans", "traces");
    exporter.sent.inc_by(7);
    exporter.queue_size.set(3);
    exporter.queue_capacity.set(1000);
    page.decide_two();
    let (code, p) = page.get("/api/pipelines").await;
    assert_eq!(code, 200, "{p}");
    let pipeline = &p["pipelines"][0];
    assert_eq!(pipeline["id"], "traces");
    assert_eq!(pipeline["item"], "spans");
    assert_eq!(pipeline["receivers"][0]["in"]["total"], 42.0);
    assert_eq!(pipeline["exporters"][0]["out"]["total"], 7.0);
    assert_eq!(pipeline["exporters"][0]["queue"]["size"], 3.0);
    assert_eq!(pipeline["exporters"][0]["queue"]["capacity"], 1000.0);
    assert_eq!(pipeline["processors"][0]["id"], "tail_sampling");
    assert_eq!(p["extensions"][0], "weft_status");

    let (code, w) = page.get("/api/window").await;
    assert_eq!(code, 200, "{w}");
    let window = &w["windows"][0];
    assert_eq!(window["id"], "tail_sampling");
    assert_eq!(window["traces"], 0);
    assert_eq!(window["decisions"]["kept"]["total"], 1.0);
    assert_eq!(window["decisions"]["dropped"]["total"], 1.0);
    assert_eq!(
        window["decisions"]["by_reason"]["decision_wait"]["total"],
        2.0
    );
    assert_eq!(window["decision_delay_seconds"]["count"], 2.0);
    assert_eq!(window["ring"]["records"], 2);
    assert_eq!(window["limits"]["decision_wait_seconds"], 5.0);
    page.ext.shutdown(deadline()).await.unwrap();
    drop(page.shared);
}
