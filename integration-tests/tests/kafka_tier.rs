//! A gateway tier behind Kafka, all real: 2 agent wefts (otlp in → `kafka` exporter with
//! `partition_traces_by_id` and `partition_logs_by_trace_id`), the local Kafka 4.1 broker, and
//! 3 gateway wefts in one consumer group (`kafka` receiver → a durable `tail_sampling` window
//! → files). The official Python SDK sends each trace's spans and logs through both agents.
//!
//! 1. A message on the topic that is not OTLP is logged, counted and skipped; the consumers
//!    go on.
//! 2. Every kept trace is whole at exactly one gateway with all its logs (the exporter keys
//!    spans and logs by trace id; the receiver's range assignment gives partition p of both
//!    topics to one member); the kept set is what one gateway alone keeps.
//!    Metrics from the Python SDK (six services through both agents, the exporter's
//!    `partition_metrics_by_resource_attributes`) arrive once each, every service's points
//!    at one gateway (one resource, one partition, one member).
//! 3. Gateway 3 is killed (`kill -9`) mid-stream and restarted afterwards on its data: its
//!    partitions move to the others and back; what it had taken is replayed from its window's
//!    log, what it had not committed is read again by the new owner. Nothing acknowledged is
//!    lost: every kept trace is whole in the union of what the gateways exported, except
//!    traces whose spans the rebalance split between two gateways, which each decided on
//!    their part (both exported it, or both decided it: each gateway's status page lists
//!    what it decided) — counted and printed (see the README's "Deploying at scale").

// The measured numbers (moved share, split traces) are printed for the report.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use weft_integration_tests::tier::{
    completeness, expected_kept, gateway_config, metrics_grouped_by_service, read_manifest,
    send_sdk_metrics, Kept, Sent,
};
use weft_integration_tests::{
    eventually, free_port, http_get, loopback, metric_value, run_python_client, services,
    unique_name, Weft,
};

struct Names {
    brokers: String,
    spans: String,
    logs: String,
    metrics: String,
    group: String,
}

struct Gateway {
    weft: Option<Weft>,
    config: String,
    metrics: u16,
    /// Its status page, to ask which traces it decided.
    status: u16,
    out: PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Gateway {
    fn start(n: &Names) -> Self {
        let out = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let metrics = free_port();
        let status = free_port();
        let receiver = format!(
            r#"  kafka:
    brokers: ["{brokers}"]
    traces: {{ topic: {spans} }}
    logs: {{ topic: {logs} }}
    metrics: {{ topic: {metrics} }}
    group_id: {group}
    initial_offset: earliest
    session_timeout: 6s
    heartbeat_interval: 2s
"#,
            brokers = n.brokers,
            spans = n.spans,
            logs = n.logs,
            metrics = n.metrics,
            group = n.group
        );
        let extensions = format!(
            "extensions:\n  file_storage:\n    directory: {}\n  weft_status:\n    endpoint: 127.0.0.1:{status}\n",
            state.path().display()
        );
        let config = gateway_config(
            "kafka",
            &receiver,
            "    storage: file_storage\n",
            &extensions,
            "file_storage, weft_status",
            metrics,
            out.path(),
        );
        let mut g = Self {
            weft: None,
            config,
            metrics,
            status,
            out: out.path().to_path_buf(),
            _dirs: (out, state),
        };
        g.restart();
        g
    }

    fn restart(&mut self) {
        self.weft = Some(Weft::start(&self.config, &[loopback(self.metrics)]).unwrap());
    }

    fn metric(&self, series: &str) -> f64 {
        http_get(loopback(self.metrics), "/metrics")
            .ok()
            .and_then(|(_, body)| metric_value(&body, series))
            .unwrap_or(0.0)
    }

    /// Partitions assigned now (started minus finished).
    fn assigned(&self) -> f64 {
        self.metric("otelcol_kafka_receiver_partition_start_total{receiver=\"kafka\"}")
            - self.metric("otelcol_kafka_receiver_partition_close_total{receiver=\"kafka\"}")
    }

    /// Whether this gateway decided `trace` (kept or dropped) since it last started: its
    /// status page's decisions ring.
    fn decided(&self, trace: &str) -> bool {
        http_get(loopback(self.status), &format!("/api/decisions?q={trace}"))
            .ok()
            .filter(|(code, _)| *code == 200)
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|v| v["matching"].as_u64())
            .is_some_and(|n| n > 0)
    }

    fn log(&self) -> String {
        self.weft.as_ref().map(Weft::log).unwrap_or_default()
    }
}

fn start_agent(n: &Names) -> (Weft, u16) {
    let grpc = free_port();
    let config = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  kafka:
    brokers: ["{brokers}"]
    traces: {{ topic: {spans} }}
    logs: {{ topic: {logs} }}
    metrics: {{ topic: {metrics_topic} }}
    partition_traces_by_id: true
    partition_logs_by_trace_id: true
    partition_metrics_by_resource_attributes: true
    retry_on_failure: {{ initial_interval: 200ms, max_interval: 1s }}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [kafka]}}
    logs: {{receivers: [otlp], exporters: [kafka]}}
    metrics: {{receivers: [otlp], exporters: [kafka]}}
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
"#,
        brokers = n.brokers,
        spans = n.spans,
        logs = n.logs,
        metrics_topic = n.metrics,
        metrics = free_port()
    );
    (Weft::start(&config, &[loopback(grpc)]).unwrap(), grpc)
}

fn send(
    agents: &[(Weft, u16)],
    traces: usize,
    seed: u64,
    manifest: &Path,
    pause: bool,
) -> Result<String, String> {
    let a = format!("http://127.0.0.1:{}", agents[0].1);
    let b = format!("http://127.0.0.1:{}", agents[1].1);
    let (traces, seed) = (traces.to_string(), seed.to_string());
    let mut args = vec![
        "--endpoint-a",
        &a,
        "--endpoint-b",
        &b,
        "--traces",
        &traces,
        "--seed",
        &seed,
        "--out",
        manifest.to_str().unwrap(),
    ];
    if pause {
        args.extend_from_slice(&["--pause-every", "40", "--pause-ms", "400"]);
    }
    run_python_client("emit_two_services.py", &args).map_err(|e| e.to_string())
}

/// For each of `traces`: what was sent, what each gateway exported of it, and which
/// gateways' status pages list it as decided — what a failure needs to be understood.
fn explain(
    sent: &BTreeMap<String, Sent>,
    kept: &[Kept],
    traces: &[String],
    gateways: &[Gateway],
) -> String {
    traces
        .iter()
        .map(|t| {
            let s = &sent[t];
            let at: Vec<String> = kept
                .iter()
                .zip(gateways)
                .enumerate()
                .map(|(i, (k, g))| {
                    format!(
                        "gateway {}: {} spans, {} logs{}",
                        i + 1,
                        k.spans.get(t).map_or(0, |x| x.len()),
                        k.logs.get(t).map_or(0, |x| x.len()),
                        if g.decided(t) { ", decided" } else { "" }
                    )
                })
                .collect();
            format!(
                "{t} ({}, {} spans, {} logs sent): {}",
                s.category,
                s.spans.len(),
                s.logs.len(),
                at.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn all_logs(agents: &[(Weft, u16)], gateways: &[Gateway]) -> String {
    agents
        .iter()
        .map(|a| a.0.log())
        .chain(gateways.iter().map(Gateway::log))
        .collect::<Vec<_>>()
        .join("\n----\n")
}

#[test]
fn a_consumer_group_of_gateways_keeps_traces_whole_and_a_killed_one_loses_nothing() {
    let names = Names {
        brokers: services().kafka_brokers,
        spans: unique_name("weft-spans"),
        logs: unique_name("weft-logs"),
        metrics: unique_name("weft-metrics"),
        group: unique_name("weft-gateways"),
    };
    // Both topics exist before anyone reads them: 6 partitions each (the broker's default).
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &names.brokers)
        .create()
        .unwrap();
    // 1. Not OTLP: logged, counted, skipped.
    producer
        .send(BaseRecord::<(), [u8]>::to(&names.spans).payload(b"\xff\xff not a protobuf"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer
        .send(BaseRecord::<(), [u8]>::to(&names.logs).payload(b"{}"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    let mut gateways: Vec<Gateway> = (0..3).map(|_| Gateway::start(&names)).collect();
    let agents = [start_agent(&names), start_agent(&names)];
    // Three topics of 6 partitions: 2 of each per member.
    let balanced = eventually(Duration::from_secs(60), || {
        gateways.iter().all(|g| g.assigned() == 6.0).then_some(())
    });
    assert!(
        balanced.is_some(),
        "the group did not settle on 6 partitions each\n{}",
        all_logs(&agents, &gateways)
    );
    let skipped = eventually(Duration::from_secs(30), || {
        let n: f64 = gateways
            .iter()
            .map(|g| {
                g.metric(&format!("otelcol_kafka_receiver_unmarshal_failed_spans_total{{receiver=\"kafka\",topic=\"{}\",partition=", names.spans))
            })
            .sum();
        (n >= 1.0).then_some(())
    });
    let joined = all_logs(&agents, &gateways);
    assert!(
        skipped.is_some() || joined.contains("skipping a message that is not valid OTLP"),
        "{joined}"
    );
    assert!(
        joined.contains("skipping a message that is not valid OTLP"),
        "{joined}"
    );

    // 2. Every kept trace whole at one gateway.
    let work = tempfile::tempdir().unwrap();
    let first_path = work.path().join("first.json");
    send(&agents, 300, 11, &first_path, false)
        .unwrap_or_else(|e| panic!("{e}\n{}", all_logs(&agents, &gateways)));
    let first = read_manifest(&first_path);
    let want = expected_kept(&first);
    let mut seen = 0;
    let kept = eventually(Duration::from_secs(90), || {
        let kept: Vec<Kept> = gateways.iter().map(|g| Kept::read(&g.out)).collect();
        let c = completeness(&first, &kept);
        seen = c.whole_at_one;
        (c.whole_at_one == want).then_some(kept)
    })
    .unwrap_or_else(|| {
        panic!(
            "{seen} of {want} kept traces arrived whole\n{}",
            all_logs(&agents, &gateways)
        )
    });
    let c = completeness(&first, &kept);
    assert!(c.split.is_empty() && c.incomplete.is_empty() && c.wrongly_kept.is_empty());
    assert_eq!(c.whole_at_one, 60);
    assert!(
        kept.iter().all(|k| !k.spans.is_empty()),
        "every gateway kept some traces"
    );

    // 2b. Metrics: six services, one resource each, through both agents.
    let senders: Vec<_> = (0..6)
        .map(|i| {
            let endpoint = format!("http://127.0.0.1:{}", agents[i % 2].1);
            let dir = work.path().to_path_buf();
            std::thread::spawn(move || {
                send_sdk_metrics(&endpoint, &format!("svc-{i}"), i as u64, &dir)
            })
        })
        .collect();
    let sent: Vec<_> = senders
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let outs: Vec<&Path> = gateways.iter().map(|g| g.out.as_path()).collect();
    let at = metrics_grouped_by_service(&sent, &outs, &|| all_logs(&agents, &gateways));
    assert_eq!(at.len(), 6, "{at:?}");

    // 3. Gateway 3 dies mid-stream, and comes back on its data afterwards.
    let second_path = work.path().join("second.json");
    let sending = {
        let agents_ports: Vec<u16> = agents.iter().map(|a| a.1).collect();
        let path = second_path.clone();
        std::thread::spawn(move || {
            let a = format!("http://127.0.0.1:{}", agents_ports[0]);
            let b = format!("http://127.0.0.1:{}", agents_ports[1]);
            run_python_client(
                "emit_two_services.py",
                &[
                    "--endpoint-a",
                    &a,
                    "--endpoint-b",
                    &b,
                    "--traces",
                    "400",
                    "--seed",
                    "12",
                    "--pause-every",
                    "40",
                    "--pause-ms",
                    "400",
                    "--out",
                    path.to_str().unwrap(),
                ],
            )
            .map_err(|e| e.to_string())
        })
    };
    // Kill once gateway 3 took some of the second run's messages.
    let consumed = |g: &Gateway| {
        g.metric("otelcol_receiver_accepted_spans_total{receiver=\"kafka\",transport=\"kafka\"}")
    };
    let before = consumed(&gateways[2]);
    assert!(
        eventually(Duration::from_secs(60), || (consumed(&gateways[2])
            > before)
            .then_some(()))
        .is_some(),
        "gateway 3 took nothing of the second run"
    );
    drop(gateways[2].weft.take()); // SIGKILL
    sending.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    gateways[2].restart();
    let second: BTreeMap<String, Sent> = read_manifest(&second_path);
    let want = expected_kept(&second);
    let mut last = (0, 0, String::new());
    let settled = eventually(Duration::from_secs(120), || {
        let kept: Vec<Kept> = gateways.iter().map(|g| Kept::read(&g.out)).collect();
        let c = completeness(&second, &kept);
        // Split by the rebalance: exported by two gateways, or decided by two (one kept its
        // part, the other dropped its own: the restarted gateway replays what it had taken
        // and decides it without the spans the new owner read meanwhile).
        let mut split = c.split.clone();
        for t in &c.incomplete {
            if !split.contains(t) && gateways.iter().filter(|g| g.decided(t)).count() > 1 {
                split.push(t.clone());
            }
        }
        last = (
            c.whole_at_one,
            split.len(),
            explain(&second, &kept, &c.incomplete, &gateways),
        );
        // Settled: every kept trace is whole somewhere, or was split by the rebalance.
        (c.incomplete.iter().all(|t| split.contains(t)) && c.whole_at_one + split.len() >= want)
            .then_some((c, split))
    });
    let (c, split) = settled.unwrap_or_else(|| {
        panic!(
            "after the kill: {} whole, {} split of {want}; not whole:\n{}\n{}",
            last.0,
            last.1,
            last.2,
            all_logs(&agents, &gateways)
        )
    });
    println!(
        "kill -9 of one of 3 gateways mid-stream: {} of {want} kept traces whole, {} split across the old and new owner ({:.1}%), {} of them incomplete",
        c.whole_at_one,
        split.len(),
        100.0 * split.len() as f64 / want as f64,
        c.incomplete.len()
    );
    assert!(
        c.incomplete.iter().all(|t| split.contains(t)),
        "a trace lost data without being split: {:?}",
        c.incomplete
    );
}
