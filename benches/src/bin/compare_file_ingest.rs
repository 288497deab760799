//! Scenario f of `weft-bench-compare`: file ingest. The same zap-style JSON lines, in a
//! CRI container log file under a `/var/log/pods`-style path, read by the Collector's
//! `filelog` receiver and by Weft's, each with the same `operators:` (`container`,
//! `json_parser` with the embedded timestamp and severity, `trace_parser`), batched and sent
//! over OTLP to `weft-sink`. The configuration is the same YAML for both: Weft reads the
//! Collector's keys.
//!
//! Each run starts the process under test afresh on the whole file (`start_at: beginning`)
//! and ends when the sink has every line; it reports lines per CPU second of the process
//! (utime + stime, so the sink does not count) and its peak RSS (VmHWM). Runs alternate
//! between the two; medians are reported in their own marked section of docs/BENCHMARKS.md.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use super::{
    clk_tck, collector_command, cpu_seconds, free_port, http_get, median, peak_rss_mib, pinned,
    stop, wait_port, Args, System,
};

const BEGIN: &str = "<!-- bench-compare:file-ingest:begin -->";
const END: &str = "<!-- bench-compare:file-ingest:end -->";

/// One run of one collector.
#[derive(Clone, Debug, Default)]
struct Run {
    cpu_s: f64,
    wall_s: f64,
    rss_mib: f64,
    lines: u64,
}

/// Writes `lines` CRI lines holding zap production JSON with trace context; returns bytes.
fn write_file(path: &Path, lines: usize) -> anyhow::Result<u64> {
    std::fs::create_dir_all(path.parent().context("a file in a folder")?)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut bytes = 0u64;
    let base = 1_764_757_730u64;
    for i in 0..lines {
        let secs = base + (i / 1000) as u64;
        let micros = (i % 1000) * 1000 + 17;
        let line = format!(
            "2025-12-03T10:{:02}:{:02}.{micros:06}123Z stdout F {{\"level\":\"{level}\",\"ts\":{secs}.{micros:06},\"caller\":\"shop/checkout.go:{caller}\",\"msg\":\"checkout step {step}\",\"trace_id\":\"{trace:032x}\",\"span_id\":\"{span:016x}\",\"order_no\":\"A-{i}\",\"user_id\":{user},\"latency_ms\":{lat}}}\n",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            level = if i % 50 == 0 { "error" } else { "info" },
            caller = 40 + i % 20,
            step = i % 7,
            trace = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0000_0000u128 + (i / 5) as u128,
            span = 0x00f0_67aa_0000_0000u64 + i as u64,
            user = 1000 + i % 997,
            lat = i % 250,
        );
        bytes += line.len() as u64;
        f.write_all(line.as_bytes())?;
    }
    f.flush()?;
    Ok(bytes)
}

fn config(sys: System, glob: &str, sink: u16, metrics: u16) -> String {
    let mut c = format!(
        "# Written by weft-bench-compare ({} scenario f).
receivers:
  filelog:
    include: [{glob}]
    start_at: beginning
    include_file_path: true
    operators:
      - type: container
      - type: json_parser
        timestamp: {{parse_from: attributes.ts, layout_type: epoch, layout: s.us}}
        severity: {{parse_from: attributes.level}}
      - type: trace_parser
processors:
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink}
    tls:
      insecure: true
    compression: none
service:
  pipelines:
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [otlp]
",
        sys.name()
    );
    let _ = match sys {
        System::Weft => write!(
            c,
            "  telemetry:\n    logs:\n      level: warn\n    metrics:\n      address: 127.0.0.1:{metrics}\n"
        ),
        _ => write!(
            c,
            "  telemetry:\n    logs:\n      level: warn\n    metrics:\n      level: none\n"
        ),
    };
    c
}

fn sink_logs(control: u16) -> anyhow::Result<u64> {
    let stats: serde_json::Value = serde_json::from_str(&http_get(control, "/stats")?)?;
    Ok(stats["logs"].as_u64().unwrap_or(0))
}

fn run_once(
    a: &Args,
    sys: System,
    bin: &Path,
    glob: &str,
    lines: u64,
    (sink_grpc, sink_control): (u16, u16),
    stem: &Path,
) -> anyhow::Result<Run> {
    http_get(sink_control, "/reset").context("resetting the sink")?;
    let metrics = free_port()?;
    let cfg = stem.with_extension("yaml");
    std::fs::write(&cfg, config(sys, glob, sink_grpc, metrics))?;
    let log = std::fs::File::create(stem.with_extension("log"))?;
    let t0 = Instant::now();
    let mut child: Child = collector_command(a, sys, bin)
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let tck = clk_tck();
    let deadline = t0 + Duration::from_secs(900);
    let result = loop {
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("{} exited: {status}", sys.name()));
        }
        let got = sink_logs(sink_control)?;
        if got >= lines {
            let run = Run {
                cpu_s: cpu_seconds(pid, tck)?,
                wall_s: t0.elapsed().as_secs_f64(),
                rss_mib: peak_rss_mib(pid)?,
                lines: got,
            };
            break Ok(run);
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "{} delivered {got} of {lines} lines in 900 s",
                sys.name()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    stop(&mut child);
    let run = result?;
    // A line delivered twice would show as more than the file holds.
    std::thread::sleep(Duration::from_millis(500));
    let after = sink_logs(sink_control)?;
    if after != lines {
        bail!("{} delivered {after} records for {lines} lines", sys.name());
    }
    Ok(run)
}

/// Runs scenario f and writes its section (unless `--no-write`).
pub fn run(a: &Args, sink_bin: &Path) -> anyhow::Result<()> {
    let Some(peer) = a.file_peer_bin.clone() else {
        bail!("scenario f needs --file-peer-bin (scripts/bench-compare.sh builds benches/peer-filelog)");
    };
    anyhow::ensure!(
        peer.exists(),
        "the filelog peer not found at {}",
        peer.display()
    );
    let dir = a.workdir.join("file-ingest");
    let _ = std::fs::remove_dir_all(&dir);
    let file: PathBuf = dir.join("pods/bench_app-0_0a1b2c3d-0000-4000-8000-000000000001/app/0.log");
    let bytes = write_file(&file, a.file_lines)?;
    let glob = format!("{}/pods/*/*/*.log", dir.display());
    let sink_grpc = free_port()?;
    let sink_control = free_port()?;
    let mut sink = pinned(&a.aux_cpus, sink_bin)
        .arg("--grpc")
        .arg(format!("127.0.0.1:{sink_grpc}"))
        .arg("--control")
        .arg(format!("127.0.0.1:{sink_control}"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("sink.log"))?)
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting weft-sink")?;
    wait_port(sink_control, Duration::from_secs(10), &mut sink)?;
    println!(
        "scenario f: file ingest, {} lines ({:.0} MB), {} runs per collector",
        a.file_lines,
        bytes as f64 / 1e6,
        a.repeats
    );
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    let mut failures = Vec::new();
    for i in 0..a.repeats {
        for (k, (sys, bin)) in [(System::Weft, &a.weft_bin), (System::Collector, &peer)]
            .into_iter()
            .enumerate()
        {
            let stem = dir.join(format!("{i:02}-{}", sys.slug()));
            match run_once(
                a,
                sys,
                bin,
                &glob,
                a.file_lines as u64,
                (sink_grpc, sink_control),
                &stem,
            ) {
                Ok(r) => {
                    println!(
                        "  {} run {}: {:.0} lines/s per core ({:.2} CPU s, {:.1} s wall), peak RSS {:.0} MiB",
                        sys.name(),
                        i + 1,
                        r.lines as f64 / r.cpu_s,
                        r.cpu_s,
                        r.wall_s,
                        r.rss_mib
                    );
                    runs[k].push(r);
                }
                Err(e) => {
                    println!("  {} run {} failed: {e:#}", sys.name(), i + 1);
                    failures.push(format!("{} run {}: {e:#}", sys.name(), i + 1));
                }
            }
        }
    }
    stop(&mut sink);
    let per_core = |r: &[Run]| median(r.iter().map(|r| r.lines as f64 / r.cpu_s).collect());
    let wall = |r: &[Run]| median(r.iter().map(|r| r.lines as f64 / r.wall_s).collect());
    let rss = |r: &[Run]| median(r.iter().map(|r| r.rss_mib).collect());
    let (w, c) = (&runs[0], &runs[1]);
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "### Scenario f: file ingest (`filelog` + `container` + `json_parser` + `trace_parser`)\n\n\
         {} zap-style JSON lines ({:.0} MB) in one CRI container log file, read from the start \
         by each collector with the same configuration and sent over OTLP to `weft-sink`; the \
         process under test pinned to CPU {}. Medians of {} runs each; the Collector is \
         `otelcol-peer-filelog` v{} (benches/peer-filelog).\n",
        a.file_lines,
        bytes as f64 / 1e6,
        if a.sut_cpus.is_empty() { "any" } else { &a.sut_cpus },
        a.repeats,
        a.file_peer_version,
    );
    let _ = writeln!(
        s,
        "| | lines/s per core | lines/s (wall) | peak RSS | runs passed |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (sys, r) in [(System::Weft, w), (System::Collector, c)] {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {:.0} MiB | {}/{} |",
            sys.name(),
            per_core(r),
            wall(r),
            rss(r),
            r.len(),
            a.repeats
        );
    }
    let _ = writeln!(
        s,
        "\nWeft / Collector: **{:.2}×** lines per core, **{:.2}×** peak RSS (goal: ≥ 3× at ≤ 0.5×).",
        per_core(w) / per_core(c),
        rss(w) / rss(c)
    );
    for f in &failures {
        let _ = writeln!(s, "\n- failed: {f}");
    }
    let _ = writeln!(s, "{END}");
    println!("\n{s}");
    if !a.no_write {
        let doc = std::fs::read_to_string(&a.markdown)?;
        let new = match (doc.find(BEGIN), doc.find(END)) {
            (Some(b), Some(e)) if e > b => {
                format!("{}{}{}", &doc[..b], s.trim_end(), &doc[e + END.len()..])
            }
            _ => format!("{}\n{s}", doc.trim_end_matches('\n')),
        };
        std::fs::write(&a.markdown, new)?;
        println!("wrote {}", a.markdown.display());
    }
    println!(
        "RESULT file_lines_per_core_ratio={:.2} file_rss_ratio={:.2}",
        per_core(w) / per_core(c),
        rss(w) / rss(c)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_collectors_read_the_same_filelog_configuration() {
        let weft: serde_yaml::Value =
            serde_yaml::from_str(&config(System::Weft, "/x/*.log", 1, 2)).unwrap();
        let otel: serde_yaml::Value =
            serde_yaml::from_str(&config(System::Collector, "/x/*.log", 1, 2)).unwrap();
        assert_eq!(weft["receivers"], otel["receivers"]);
        assert_eq!(weft["processors"], otel["processors"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/0.log");
        let bytes = write_file(&path, 3).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert_eq!(bytes as usize, text.len());
        let json = text.lines().next().unwrap().splitn(4, ' ').nth(3).unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["trace_id"].as_str().unwrap().len(), 32);
    }
}
