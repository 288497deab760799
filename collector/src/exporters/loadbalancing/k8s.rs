//! `resolver::k8s`: the backends are the ready endpoints of a Kubernetes Service, watched
//! through its `discovery.k8s.io/v1` EndpointSlices (list, then watch; kube's watcher
//! resumes from the last resource version, and re-lists after a `410 Gone`).
//!
//! Which endpoints are backends: an endpoint whose `conditions.ready` is not `false` (the
//! API says an absent condition means ready) **and** whose `conditions.terminating` is not
//! `true`. The second rule is where Weft differs from the Collector (contrib #50436): on a
//! Service with `publishNotReadyAddresses: true` a terminating pod stays `ready: true`, and
//! the Collector keeps sending it new traces until it is gone; Weft stops at once, and the
//! data already queued for it is re-routed to the new owners like for any backend that left
//! the ring.
//!
//! The logic that turns watch events into a backend list ([`Slices`]) is plain code over
//! the event stream, tested on recorded EndpointSlice watch events. The client part
//! ([`watch`]) has not run against a live API server in CI (none runs here); the README
//! says so.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use super::config::K8sResolver;

/// The Service account's namespace inside a pod.
const IN_CLUSTER_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Which Service, and how its endpoints become backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sTarget {
    pub name: String,
    /// `None`: the pod's own namespace, found when the watch starts (else `default`).
    pub namespace: Option<String>,
    /// One backend per port and endpoint (4317 when none is configured).
    pub ports: Vec<u16>,
    /// `<hostname>.<service>.<namespace>` instead of the address (a headless Service of a
    /// StatefulSet, for TLS names or a mesh).
    pub return_hostnames: bool,
    /// The watch's server-side timeout: a watch is renewed at least this often.
    pub timeout_secs: u32,
}

impl K8sTarget {
    /// Reads `service` as the Collector does: `name`, `name.namespace`, or
    /// `name.namespace.svc.<cluster domain>`. Without a namespace, the pod's own is used once
    /// the watch starts ([`K8sTarget::in_namespace`]). Pure: validation calls it.
    pub fn new(cfg: &K8sResolver) -> Result<Self, String> {
        let parts: Vec<&str> = cfg.service.split('.').collect();
        let name = parts.first().copied().unwrap_or_default();
        if name.is_empty() {
            return Err(
                "service: required, e.g. \"weft-gateway\" or \"weft-gateway.observability\"".into(),
            );
        }
        let namespace = match parts.get(1) {
            Some(ns) if !ns.is_empty() => Some(ns.to_string()),
            Some(_) => {
                return Err(format!(
                    "service: \"{}\" has an empty namespace",
                    cfg.service
                ))
            }
            None => None,
        };
        match parts.len() {
            1 | 2 => {}
            3 => {
                return Err(format!(
                "service: \"{}\" lacks the cluster domain after \"svc\" (e.g. .svc.cluster.local)",
                cfg.service
            ))
            }
            _ if parts[2] != "svc" => {
                return Err(format!(
                    "service: the third label of \"{}\" must be \"svc\"",
                    cfg.service
                ))
            }
            _ => {}
        }
        let ports = if cfg.ports.is_empty() {
            vec![4317]
        } else {
            cfg.ports.clone()
        };
        if ports.contains(&0) {
            return Err("ports: 0 is not a port".into());
        }
        let timeout = cfg.timeout.map_or(60, |t| t.get().as_secs());
        Ok(Self {
            name: name.to_string(),
            namespace,
            ports,
            return_hostnames: cfg.return_hostnames,
            timeout_secs: u32::try_from(timeout.max(1)).unwrap_or(u32::MAX),
        })
    }

    /// With the namespace settled: the configured one, else `in_cluster` (the pod's), else
    /// `default`, as the Collector does.
    pub fn in_namespace(mut self, in_cluster: impl FnOnce() -> Option<String>) -> Self {
        if self.namespace.is_none() {
            self.namespace = Some(in_cluster().unwrap_or_else(|| "default".to_string()));
        }
        self
    }

    fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// The label every EndpointSlice of the Service carries.
    fn selector(&self) -> String {
        format!("kubernetes.io/service-name={}", self.name)
    }
}

/// The pod's namespace, when Weft runs in a cluster.
pub fn in_cluster_namespace() -> Option<String> {
    let ns = std::fs::read_to_string(IN_CLUSTER_NAMESPACE).ok()?;
    let ns = ns.trim();
    (!ns.is_empty()).then(|| ns.to_string())
}

/// The Service's endpoints as the watch has shown them: each slice's backends, by slice
/// name. During a re-list the new slices are gathered aside and replace the old ones at
/// once, so a re-list never shows a half-empty ring.
#[derive(Debug, Default)]
pub struct Slices {
    slices: BTreeMap<String, BTreeSet<String>>,
    relisting: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Endpoints left out because `return_hostnames` is on and they have no hostname yet.
    pub skipped_without_hostname: u64,
}

impl Slices {
    /// Applies one watch event. Returns the whole backend list (sorted, each once) when it
    /// may have changed, `None` while a re-list is still gathering.
    pub fn apply(
        &mut self,
        target: &K8sTarget,
        event: Event<EndpointSlice>,
    ) -> Option<Vec<String>> {
        match event {
            Event::Init => {
                self.relisting = Some(BTreeMap::new());
                return None;
            }
            Event::InitApply(slice) => {
                let (name, backends) = self.backends_of(target, &slice);
                self.relisting
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name, backends);
                return None;
            }
            Event::InitDone => {
                self.slices = self.relisting.take().unwrap_or_default();
            }
            Event::Apply(slice) => {
                let (name, backends) = self.backends_of(target, &slice);
                self.slices.insert(name, backends);
            }
            Event::Delete(slice) => {
                let name = slice.metadata.name.clone().unwrap_or_default();
                self.slices.remove(&name);
            }
        }
        Some(self.backends())
    }

    /// Every slice's backends, sorted, each once (an endpoint may sit in two slices while
    /// the controller moves it).
    pub fn backends(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.slices.values().flatten().collect();
        all.into_iter().cloned().collect()
    }

    fn backends_of(
        &mut self,
        target: &K8sTarget,
        slice: &EndpointSlice,
    ) -> (String, BTreeSet<String>) {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let mut out = BTreeSet::new();
        for endpoint in slice.endpoints.iter().flatten() {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            if !ready || terminating {
                continue;
            }
            let hosts: Vec<String> = if target.return_hostnames {
                match endpoint.hostname.as_deref().filter(|h| !h.is_empty()) {
                    Some(h) => vec![format!("{h}.{}.{}", target.name, target.namespace())],
                    None => {
                        self.skipped_without_hostname += 1;
                        continue;
                    }
                }
            } else {
                endpoint.addresses.clone()
            };
            for host in hosts {
                for port in &target.ports {
                    out.insert(join_host_port(&host, *port));
                }
            }
        }
        (name, out)
    }
}

/// `host:port`, with an IPv6 address in brackets.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What the watch reports: a new backend list, or a failure (the last list stays).
pub enum Update {
    Backends(Vec<String>),
    Failed(String),
}

/// Watches the Service's EndpointSlices with the in-cluster configuration (or the
/// kubeconfig outside a cluster), calling `on_update` for every change and every failure,
/// until the returned stream ends (never, while the API server can be reached again: the
/// watcher backs off and retries on its own).
pub async fn watch(target: K8sTarget, mut on_update: impl FnMut(Update)) {
    let target = target.in_namespace(in_cluster_namespace);
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            on_update(Update::Failed(format!(
                "cannot configure a Kubernetes client (in-cluster service account or kubeconfig): {e}"
            )));
            return;
        }
    };
    let api: kube::Api<EndpointSlice> = kube::Api::namespaced(client, target.namespace());
    let config = watcher::Config::default()
        .labels(&target.selector())
        .timeout(target.timeout_secs);
    let mut slices = Slices::default();
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if let Some(backends) = slices.apply(&target, event) {
                    on_update(Update::Backends(backends));
                }
            }
            Err(e) => on_update(Update::Failed(format!(
                "watching the EndpointSlices of {}/{}: {e}",
                target.namespace(),
                target.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent;

    use super::*;

    fn target(return_hostnames: bool) -> K8sTarget {
        K8sTarget::new(&K8sResolver {
            service: "weft-gateway.observability".into(),
            ports: vec![4317],
            timeout: None,
            return_hostnames,
        })
        .unwrap()
    }

    /// A watch stream of a gateway StatefulSet's Service, in the API server's wire format
    /// (`{"type": …, "object": EndpointSlice}` lines, as `kubectl get --raw
    /// '/apis/discovery.k8s.io/v1/namespaces/observability/endpointslices?watch=1&…'` prints
    /// them) for a rollout: a pod not ready yet, then ready; a pod terminating while still
    /// `ready` (publishNotReadyAddresses); an endpoint moving between slices; a slice deleted.
    /// Written from the `discovery.k8s.io/v1` schema, not captured from a live cluster.
    fn recorded() -> Vec<WatchEvent<EndpointSlice>> {
        let text = include_str!("../../../testdata/k8s/endpointslices-watch.jsonl");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a watch event"))
            .collect()
    }

    /// The first `n` recorded events as the watcher delivers them after its initial list
    /// (`ADDED` during the list are `InitApply`, then `InitDone`).
    fn replay(
        slices: &mut Slices,
        target: &K8sTarget,
        events: &[WatchEvent<EndpointSlice>],
    ) -> Vec<Vec<String>> {
        let mut lists = Vec::new();
        for event in events {
            let event = match event.clone() {
                WatchEvent::Added(s) | WatchEvent::Modified(s) => Event::Apply(s),
                WatchEvent::Deleted(s) => Event::Delete(s),
                other => panic!("unexpected event in the recording: {other:?}"),
            };
            if let Some(list) = slices.apply(target, event) {
                lists.push(list);
            }
        }
        lists
    }

    #[test]
    fn the_service_name_is_read_as_the_collector_reads_it() {
        let cfg = |service: &str| K8sResolver {
            service: service.into(),
            ..K8sResolver::default()
        };
        let t = K8sTarget::new(&cfg("gw.obs.svc.cluster.local")).unwrap();
        assert_eq!(
            (t.name.as_str(), t.namespace.as_deref()),
            ("gw", Some("obs"))
        );
        assert_eq!(t.ports, [4317]);
        // The configured namespace wins over the pod's.
        let t = t.in_namespace(|| Some("mine".into()));
        assert_eq!(t.namespace.as_deref(), Some("obs"));
        let t = K8sTarget::new(&cfg("gw")).unwrap();
        assert_eq!(t.namespace, None);
        let inferred = t.clone().in_namespace(|| Some("mine".into()));
        assert_eq!(inferred.namespace.as_deref(), Some("mine"));
        let fallback = t.in_namespace(|| None);
        assert_eq!(fallback.namespace.as_deref(), Some("default"));
        assert!(K8sTarget::new(&cfg("gw.obs.svc"))
            .unwrap_err()
            .contains("cluster domain"));
        assert!(K8sTarget::new(&cfg("gw.obs.pods.cluster.local"))
            .unwrap_err()
            .contains("\"svc\""));
        assert!(K8sTarget::new(&cfg("")).unwrap_err().contains("required"));
    }

    #[test]
    fn the_initial_list_gives_the_ready_endpoints_at_once() {
        let target = target(false);
        let events = recorded();
        let mut slices = Slices::default();
        assert_eq!(slices.apply(&target, Event::Init), None);
        for event in &events[..2] {
            let WatchEvent::Added(s) = event.clone() else {
                panic!("the recording starts with the list")
            };
            assert_eq!(slices.apply(&target, Event::InitApply(s)), None);
        }
        // weft-gateway-2 is not ready yet (readiness probe): not a backend.
        assert_eq!(
            slices.apply(&target, Event::InitDone).unwrap(),
            ["10.244.1.17:4317", "10.244.2.23:4317"]
        );
    }

    #[test]
    fn recorded_rollout_ready_terminating_and_deleted_endpoints() {
        let target = target(false);
        let events = recorded();
        let mut slices = Slices::default();
        let lists = replay(&mut slices, &target, &events);
        assert_eq!(
            lists,
            [
                // ADDED: the slice with gateway-0 and gateway-1.
                vec!["10.244.1.17:4317", "10.244.2.23:4317"],
                // ADDED: a second slice, gateway-2 not ready yet.
                vec!["10.244.1.17:4317", "10.244.2.23:4317"],
                // MODIFIED: gateway-2 became ready.
                vec!["10.244.1.17:4317", "10.244.2.23:4317", "10.244.3.9:4317"],
                // MODIFIED: gateway-1 is terminating but still ready (the Service publishes
                // not-ready addresses): Weft stops sending it new traces now.
                vec!["10.244.1.17:4317", "10.244.3.9:4317"],
                // MODIFIED: gateway-1 gone, gateway-2 moved into this slice.
                vec!["10.244.1.17:4317", "10.244.3.9:4317"],
                // DELETED: the second slice; gateway-2 is still in the first one.
                vec!["10.244.1.17:4317", "10.244.3.9:4317"],
                // MODIFIED: the first slice without gateway-2: only gateway-0 is left.
                vec!["10.244.1.17:4317"],
            ]
            .map(|l| l.into_iter().map(str::to_string).collect::<Vec<_>>())
        );
    }

    #[test]
    fn a_relist_replaces_the_slices_at_once() {
        let target = target(false);
        let events = recorded();
        let mut slices = Slices::default();
        replay(&mut slices, &target, &events[..3]);
        // A 410 Gone: the watcher lists again; the second slice no longer exists.
        assert_eq!(slices.apply(&target, Event::Init), None);
        let WatchEvent::Added(first) = events[0].clone() else {
            panic!()
        };
        assert_eq!(slices.apply(&target, Event::InitApply(first)), None);
        // Until the list is complete, the old ring stands.
        assert_eq!(slices.backends().len(), 3);
        assert_eq!(
            slices.apply(&target, Event::InitDone).unwrap(),
            ["10.244.1.17:4317", "10.244.2.23:4317"]
        );
    }

    #[test]
    fn hostnames_and_several_ports() {
        let mut target = target(true);
        target.ports = vec![4317, 4318];
        let events = recorded();
        let mut slices = Slices::default();
        let lists = replay(&mut slices, &target, &events[..3]);
        assert_eq!(
            lists.last().unwrap(),
            &[
                "weft-gateway-0.weft-gateway.observability:4317",
                "weft-gateway-0.weft-gateway.observability:4318",
                "weft-gateway-1.weft-gateway.observability:4317",
                "weft-gateway-1.weft-gateway.observability:4318",
                "weft-gateway-2.weft-gateway.observability:4317",
                "weft-gateway-2.weft-gateway.observability:4318",
            ]
            .map(str::to_string)
        );
        assert_eq!(slices.skipped_without_hostname, 0);
        // An endpoint without a hostname is skipped and counted, not turned into ".svc.ns".
        let mut nameless = match events[0].clone() {
            WatchEvent::Added(s) => s,
            _ => panic!(),
        };
        nameless.endpoints.as_mut().expect("endpoints")[0].hostname = None;
        slices.apply(&target, Event::Apply(nameless));
        assert_eq!(slices.skipped_without_hostname, 1);
        assert!(!slices
            .backends()
            .iter()
            .any(|b| b.starts_with("weft-gateway-0.")));
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        assert_eq!(join_host_port("fd00::17", 4317), "[fd00::17]:4317");
        assert_eq!(join_host_port("10.0.0.1", 4317), "10.0.0.1:4317");
    }
}
