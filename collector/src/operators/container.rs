//! `container`: reads container runtime log lines, as the Collector's `container` operator.
//!
//! ```yaml
//! - type: container
//!   format: auto                     # auto (default) | docker | crio | containerd
//!   add_metadata_from_filepath: true # k8s.* resource attributes from /var/log/pods paths
//!   max_log_size: 0                  # bound on a joined line; 0 = the receiver's max_log_size
//! ```
//!
//! Formats, detected per line with `auto`:
//! - Docker's json-file driver: `{"log":"…\n","stream":"stdout","time":"…"}`; a `log`
//!   without a trailing newline is a part of a longer line (Docker splits at 16 KiB);
//! - CRI (containerd and CRI-O, as the kubelet stores them):
//!   `<RFC3339Nano time> <stdout|stderr> <P|F> <line>`; `P` marks a leading part of a line
//!   longer than the runtime's limit, `F` the last (or only) part.
//!
//! The parts of a split line are joined into one record (per file and stream) before it
//! goes on; while a line is incomplete its first part's offset is reported by `held_from`,
//! so the receiver never commits past it. A joined line longer than `max_log_size` is cut
//! there (counted in `weft_receiver_filelog_records_truncated`). The record's body is the
//! line, its time the runtime's, `log.iostream` the stream. From a path
//! `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log` (or a rotated
//! `<restart>.log.<timestamp>`) it adds the resource
//! attributes `k8s.namespace.name`, `k8s.pod.name`, `k8s.pod.uid`, `k8s.container.name`
//! and `k8s.container.restart_count` (the receiver must set `include_file_path: true`).

use std::collections::HashMap;

use prometheus_client::metrics::counter::Counter;
use regex::Regex;
use serde::Deserialize;
use weft_config::ByteSize;

use super::{
    Entry, Field, Map, OnError, Operator, OperatorConfig, OperatorContext, Outcome, Value,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Auto,
    Docker,
    Crio,
    Containerd,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub format: Format,
    #[serde(default = "yes")]
    pub add_metadata_from_filepath: bool,
    #[serde(default)]
    pub max_log_size: ByteSize,
    #[serde(default)]
    pub on_error: OnError,
}

fn yes() -> bool {
    true
}

const NO_PATH: &str =
    "no attributes[\"log.file.path\"] to read the pod from: set include_file_path: true on the receiver";

/// The kubelet's pod log path (the Collector's expression), also for a file the kubelet
/// rotated (`0.log.20250101-120000`), which the Collector's expression does not match.
const POD_PATH: &str = r"^.*/(?P<namespace>[^_]+)_(?P<pod_name>[^_]+)_(?P<uid>[a-f0-9\-]+)/(?P<container_name>[^\._]+)/(?P<restart_count>\d+)\.log(\.[0-9][0-9.\-]*)?$";

impl OperatorConfig for Config {
    fn build(&self, ctx: &OperatorContext) -> anyhow::Result<Box<dyn Operator>> {
        let max = match self.max_log_size.0 {
            0 => ctx.max_log_size,
            n => n as usize,
        };
        Ok(Box::new(Container {
            format: self.format,
            metadata: self.add_metadata_from_filepath,
            max,
            pod_path: Regex::new(POD_PATH).expect("a valid expression"),
            resources: HashMap::new(),
            pending: HashMap::new(),
            truncated: ctx.telemetry.counter(
                "weft_receiver_filelog_records_truncated",
                "Log records cut at max_log_size (the rest of the line is dropped)",
                &[("receiver", &ctx.receiver)],
            ),
            errors: ctx.errors(self.on_error),
        }))
    }

    fn needs_file_path(&self) -> bool {
        self.add_metadata_from_filepath
    }
}

/// A line split by the runtime, joined so far.
struct Pending {
    entry: Entry,
    text: String,
    cut: bool,
}

struct Container {
    format: Format,
    metadata: bool,
    max: usize,
    pod_path: Regex,
    /// Resource attributes per file path (a path is parsed once).
    resources: HashMap<String, Result<Map, String>>,
    /// Incomplete lines per (file, stream is stdout).
    pending: HashMap<(u64, bool), Pending>,
    truncated: Counter,
    errors: super::ErrorHandler,
}

/// One line of a container log, read.
struct Line<'a> {
    time: &'a str,
    stdout: bool,
    partial: bool,
    text: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct DockerLine {
    log: String,
    stream: String,
    time: String,
}

fn parse_cri(line: &str) -> Result<Line<'_>, String> {
    let mut parts = line.splitn(4, ' ');
    let (Some(time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not a CRI log line (<time> <stream> <P|F> <log>)".to_string());
    };
    let stdout = match stream {
        "stdout" => true,
        "stderr" => false,
        other => return Err(format!("not a CRI log line: stream {other:?}")),
    };
    let partial = match tag.split(':').next() {
        Some("P") => true,
        Some("F") => false,
        _ => return Err(format!("not a CRI log line: tag {tag:?} (expected P or F)")),
    };
    Ok(Line {
        time,
        stdout,
        partial,
        text: std::borrow::Cow::Borrowed(parts.next().unwrap_or("")),
    })
}

impl Container {
    fn read<'a>(
        &self,
        line: &'a str,
        docker: &'a mut Option<DockerLine>,
    ) -> Result<Line<'a>, String> {
        let is_docker = match self.format {
            Format::Auto => line.starts_with('{'),
            Format::Docker => true,
            Format::Crio | Format::Containerd => false,
        };
        if !is_docker {
            return parse_cri(line);
        }
        let d: DockerLine =
            serde_json::from_str(line).map_err(|e| format!("not a Docker json-file line: {e}"))?;
        let d = docker.insert(d);
        let (text, partial) = match d.log.strip_suffix('\n') {
            Some(t) => (t, false),
            None => (d.log.as_str(), true),
        };
        Ok(Line {
            time: &d.time,
            stdout: d.stream != "stderr",
            partial,
            text: std::borrow::Cow::Borrowed(text),
        })
    }

    fn resource(&mut self, entry: &Entry) -> Result<Map, String> {
        let path = match &entry.attributes {
            Value::Map(m) => match m.get("log.file.path") {
                Some(Value::Str(p)) => p.as_str(),
                _ => return Err(NO_PATH.to_string()),
            },
            _ => return Err(NO_PATH.to_string()),
        };
        if let Some(r) = self.resources.get(path) {
            return r.clone();
        }
        let path = path.to_string();
        let parsed = match self.pod_path.captures(&path) {
            Some(c) => {
                let mut m = Map::default();
                for (group, attr) in [
                    ("namespace", "k8s.namespace.name"),
                    ("pod_name", "k8s.pod.name"),
                    ("uid", "k8s.pod.uid"),
                    ("container_name", "k8s.container.name"),
                    ("restart_count", "k8s.container.restart_count"),
                ] {
                    m.insert(attr, Value::Str(c[group].to_string()));
                }
                Ok(m)
            }
            None => Err(format!(
                "path {path:?} is not a pod log path (<namespace>_<pod>_<uid>/<container>/<n>.log)"
            )),
        };
        // Bounded: one entry per file the receiver ever read; forgotten paths are rare
        // enough (pod churn) that clearing at a size bound is simpler than tracking them.
        if self.resources.len() >= 65_536 {
            self.resources.clear();
        }
        self.resources.insert(path, parsed.clone());
        parsed
    }

    /// Finishes a whole line: body, metadata.
    fn complete(&mut self, mut entry: Entry, text: String) -> Outcome {
        entry.body = Value::Str(text);
        if self.metadata {
            match self.resource(&entry) {
                Ok(m) => {
                    if let Err(e) = entry.set(
                        &Field {
                            root: super::entry::Root::Resource,
                            keys: Vec::new(),
                        },
                        Value::Map(m),
                    ) {
                        return self.errors.fail(entry, &e);
                    }
                }
                Err(e) => return self.errors.fail(entry, &e),
            }
        }
        Outcome::Emit(entry)
    }

    /// Appends `part` to `text`, cutting at the size bound.
    fn append(&self, text: &mut String, cut: &mut bool, part: &str) {
        if *cut {
            return;
        }
        let room = self.max.saturating_sub(text.len());
        if part.len() <= room {
            text.push_str(part);
        } else {
            let mut end = room;
            while !part.is_char_boundary(end) {
                end -= 1;
            }
            text.push_str(&part[..end]);
            *cut = true;
            self.truncated.inc();
        }
    }
}

impl Operator for Container {
    fn process(&mut self, mut entry: Entry) -> Outcome {
        let raw = match std::mem::replace(&mut entry.body, Value::Null) {
            Value::Str(s) => s,
            Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
            other => {
                let message = format!("expected a line of text, found {}", other.type_name());
                entry.body = other;
                return self.errors.fail(entry, &message);
            }
        };
        let mut docker = None;
        let read = self
            .read(&raw, &mut docker)
            .map(|l| (l.time.to_string(), l.stdout, l.partial, l.text.into_owned()));
        let (time, stdout, partial, text) = match read {
            Ok(parts) => parts,
            Err(e) => {
                entry.body = Value::Str(raw);
                return self.errors.fail(entry, &e);
            }
        };
        let key = (entry.source.file, stdout);
        if let Some(p) = self.pending.get_mut(&key) {
            let (mut t, mut cut) = (std::mem::take(&mut p.text), p.cut);
            self.append(&mut t, &mut cut, &text);
            let p = self.pending.get_mut(&key).expect("present");
            p.text = t;
            p.cut = cut;
            p.entry.source.end = entry.source.end;
            if partial {
                return Outcome::Held;
            }
            let p = self.pending.remove(&key).expect("present");
            return self.complete(p.entry, p.text);
        }
        match chrono::DateTime::parse_from_rfc3339(&time) {
            Ok(t) => entry.timestamp = t.timestamp_nanos_opt().unwrap_or_default().max(0) as u64,
            Err(e) => {
                let message = format!("time {time:?} is not RFC 3339: {e}");
                entry.body = Value::Str(raw);
                return self.errors.fail(entry, &message);
            }
        }
        entry.set_attribute(
            "log.iostream",
            Value::Str(if stdout { "stdout" } else { "stderr" }.into()),
        );
        if partial {
            let mut first = String::new();
            let mut cut = false;
            self.append(&mut first, &mut cut, &text);
            self.pending.insert(
                key,
                Pending {
                    entry,
                    text: first,
                    cut,
                },
            );
            return Outcome::Held;
        }
        if text.len() > self.max {
            let mut t = String::new();
            let mut cut = false;
            self.append(&mut t, &mut cut, &text);
            return self.complete(entry, t);
        }
        self.complete(entry, text)
    }

    fn held_from(&self, file: u64) -> Option<u64> {
        self.pending
            .iter()
            .filter(|((f, _), _)| *f == file)
            .map(|(_, p)| p.entry.source.start)
            .min()
    }

    fn flush(&mut self, file: u64) -> Vec<Entry> {
        let keys: Vec<_> = self
            .pending
            .keys()
            .filter(|(f, _)| *f == file)
            .copied()
            .collect();
        let mut out = Vec::new();
        for k in keys {
            let p = self.pending.remove(&k).expect("listed");
            match self.complete(p.entry, p.text) {
                Outcome::Emit(e) => out.push(e),
                Outcome::Many(v) => out.extend(v),
                Outcome::Held | Outcome::Drop => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Entry, Source, Value};

    const PATH: &str =
        "/var/log/pods/shop_checkout-7d4b9_0a1b2c3d-0000-4000-8000-000000000001/checkout/2.log";

    fn from_file(text: &str, start: u64) -> Entry {
        let mut e = Entry::new(
            Value::Str(text.into()),
            1,
            Source {
                file: 7,
                start,
                end: start + text.len() as u64 + 1,
            },
        );
        e.set_attribute("log.file.path", Value::Str(PATH.into()));
        e
    }

    #[test]
    fn cri_lines_are_read_and_partials_joined_with_pod_metadata() {
        let mut chain = build("- {type: container}");
        let mut out = Vec::new();
        chain.run(
            from_file("2025-12-03T10:28:50.123456789Z stdout P {\"msg\":\"a lo", 0),
            &mut out,
        );
        chain.run(
            from_file("2025-12-03T10:28:50.123456790Z stderr F oops", 60),
            &mut out,
        );
        assert_eq!(out.len(), 1, "stderr is another stream");
        assert_eq!(
            chain.held_from(7),
            Some(0),
            "the partial line holds the offset"
        );
        chain.run(
            from_file("2025-12-03T10:28:50.2Z stdout F ng line\"}", 120),
            &mut out,
        );
        assert_eq!(chain.held_from(7), None);
        assert_eq!(out.len(), 2);
        let e = &out[1];
        assert_eq!(e.body, Value::Str("{\"msg\":\"a long line\"}".into()));
        assert_eq!(
            e.timestamp, 1_764_757_730_123_456_789,
            "the first part's time"
        );
        assert_eq!(e.source.start, 0);
        assert_eq!(
            e.get(&field("attributes[\"log.iostream\"]")),
            Some(&Value::Str("stdout".into()))
        );
        for (k, v) in [
            ("k8s.namespace.name", "shop"),
            ("k8s.pod.name", "checkout-7d4b9"),
            ("k8s.pod.uid", "0a1b2c3d-0000-4000-8000-000000000001"),
            ("k8s.container.name", "checkout"),
            ("k8s.container.restart_count", "2"),
        ] {
            assert_eq!(
                e.get(&field(&format!("resource[\"{k}\"]"))),
                Some(&Value::Str(v.into())),
                "{k}"
            );
        }
        assert_eq!(out[0].body, Value::Str("oops".into()));
    }

    #[test]
    fn docker_json_lines_are_read() {
        let mut chain = build("- {type: container}");
        let mut out = Vec::new();
        chain.run(
            from_file(
                r#"{"log":"part one, ","stream":"stdout","time":"2025-12-03T10:28:50Z"}"#,
                0,
            ),
            &mut out,
        );
        chain.run(
            from_file(
                r#"{"log":"part two\n","stream":"stdout","time":"2025-12-03T10:28:51Z"}"#,
                80,
            ),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].body, Value::Str("part one, part two".into()));
    }

    #[test]
    fn joined_lines_are_cut_at_max_log_size_and_bad_lines_kept() {
        let mut chain =
            build("- {type: container, max_log_size: 10, add_metadata_from_filepath: false}");
        let mut out = Vec::new();
        chain.run(
            from_file("2025-12-03T10:28:50Z stdout P 0123456", 0),
            &mut out,
        );
        chain.run(
            from_file("2025-12-03T10:28:50Z stdout P 789abcdef", 40),
            &mut out,
        );
        chain.run(from_file("2025-12-03T10:28:50Z stdout F ghi", 80), &mut out);
        assert_eq!(out[0].body, Value::Str("0123456789".into()));
        let e = one(&mut chain, from_file("garbage", 0));
        assert_eq!(e.body, Value::Str("garbage".into()));
        assert!(e.get(&field("attributes[\"weft.parse_error\"]")).is_some());
    }
}
