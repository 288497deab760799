#!/usr/bin/env bash
# `make run`: the newcomer's demo. Builds Weft, starts the local Jaeger and OpenSearch,
# runs Weft on config/demo.yaml, drives it with the demo shop (examples/demo/shop.py, the
# official OpenTelemetry Python SDK), prints what happened and where to look, and keeps Weft
# running for your own traffic. Ctrl-C stops everything this script started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/target/demo"
mkdir -p "$out"

grpc="${WEFT_OTLP_GRPC_ENDPOINT:-localhost:4317}"
http_ep="${WEFT_OTLP_HTTP_ENDPOINT:-localhost:4318}"
metrics="${WEFT_METRICS_ENDPOINT:-localhost:8888}"
health="${WEFT_HEALTH_ENDPOINT:-localhost:13133}"
export WEFT_OTLP_GRPC_ENDPOINT="$grpc" WEFT_OTLP_HTTP_ENDPOINT="$http_ep" WEFT_METRICS_ENDPOINT="$metrics" WEFT_HEALTH_ENDPOINT="$health"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "building weft"
cargo build --quiet -p weft --bin weft

started_services=0
if ! bash scripts/services.sh status >/dev/null 2>&1; then started_services=1; fi
say "starting the local Jaeger v2 and OpenSearch (first run installs them: several minutes)"
bash scripts/services.sh up
set -a; source target/services/env; set +a

python="$(bash scripts/python-env.sh)"

weft_pid=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$weft_pid" ] && kill -0 "$weft_pid" 2>/dev/null; then
    say "stopping weft"
    kill -TERM "$weft_pid" 2>/dev/null || true
    wait "$weft_pid" 2>/dev/null || true
  fi
  if [ "$started_services" = 1 ]; then
    say "stopping Jaeger and OpenSearch"
    bash scripts/services.sh down || true
  fi
}
trap cleanup EXIT INT TERM

say "starting weft with config/demo.yaml (log: target/demo/weft.log)"
./target/debug/weft --config config/demo.yaml >"$out/weft.log" 2>&1 &
weft_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://$health/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$weft_pid" 2>/dev/null; then echo "weft exited; its log:"; cat "$out/weft.log"; exit 1; fi
  sleep 0.1
done

say "running the demo shop: 300 orders across frontend, checkout, payments, inventory"
"$python" examples/demo/shop.py --endpoint "http://$grpc" --requests 300 --rate 100 --summary "$out/summary.json"

say "waiting for the tail sampler's decisions (decision_wait: 5s)"
sleep 7

metric() { curl -fsS "http://$metrics/metrics" | awk -v s="$1" 'index($0, s) == 1 { sum += $NF } END { printf "%d", sum }'; }
kept=$(metric 'otelcol_processor_tail_sampling_global_count_traces_sampled_total{processor="tail_sampling",sampled="true"}')
dropped=$(metric 'otelcol_processor_tail_sampling_global_count_traces_sampled_total{processor="tail_sampling",sampled="false"}')
spans_in=$(metric 'otelcol_receiver_accepted_spans_total')
logs_in=$(metric 'otelcol_receiver_accepted_log_records_total')
spans_out=$(metric 'otelcol_exporter_sent_spans_total{exporter="otlp/jaeger"}')
logs_out=$(metric 'otelcol_exporter_sent_log_records_total{exporter="elasticsearch"}')

trace_id=$("$python" -c 'import json,sys; s=json.load(open(sys.argv[1])); print((s["error"] or s["slow"] or s["log_error"])[0])' "$out/summary.json")
index="go-logs-$(date -u +%Y.%m.%d)"

cat <<TXT

What happened
  received        $spans_in spans, $logs_in log records
  traces decided  $((kept + dropped)): kept $kept (errors, slow requests, ERROR logs), dropped $dropped
  exported        $spans_out spans to Jaeger, $logs_out log records to OpenSearch
                  (logs of kept traces, enriched with weft.policy, weft.root_service, ...,
                   plus WARN-and-above logs of dropped traces, marked weft.sampled=false)

Where to look
  a kept trace in Jaeger:
    curl -s $JAEGER_QUERY_URL/api/traces/$trace_id | python3 -m json.tool | less
  its logs in OpenSearch (the Kibana query trace_id:"$trace_id"):
    curl -s '$OPENSEARCH_URL/$index/_search?pretty' -H 'Content-Type: application/json' \\
      -d '{"query":{"query_string":{"query":"trace_id:\\"$trace_id\\""}}}'
  every log of a slow trace:
    curl -s '$OPENSEARCH_URL/$index/_search?pretty&q=weft.policy:slow'
  Weft's own metrics:   curl -s http://$metrics/metrics
  Weft's log:           target/demo/weft.log

Weft keeps running: point your SDK at http://$grpc (gRPC) or http://$http_ep (HTTP).
Ctrl-C stops Weft$( [ "$started_services" = 1 ] && echo ", Jaeger and OpenSearch").
TXT
wait "$weft_pid"
