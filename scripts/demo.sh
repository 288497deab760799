#!/usr/bin/env bash
# `make run`: the newcomer's demo. Builds Weft, starts the local Jaeger and OpenSearch,
# runs Weft on config/demo.yaml, drives it with the demo shop (examples/demo/shop.py, the
# official OpenTelemetry Python SDK), prints what happened and where to look — the status
# page first — and keeps Weft running for your own traffic. Ctrl-C stops Weft (and Jaeger
# and OpenSearch when this script started them) and ends with exit status 0.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/target/demo"
mkdir -p "$out"

# Every address is 127.0.0.1: the same words in what Weft listens on and what is printed.
grpc="${WEFT_OTLP_GRPC_ENDPOINT:-127.0.0.1:4317}"
http_ep="${WEFT_OTLP_HTTP_ENDPOINT:-127.0.0.1:4318}"
metrics="${WEFT_METRICS_ENDPOINT:-127.0.0.1:8888}"
health="${WEFT_HEALTH_ENDPOINT:-127.0.0.1:13133}"
status="${WEFT_STATUS_ENDPOINT:-127.0.0.1:55679}"
export WEFT_OTLP_GRPC_ENDPOINT="$grpc" WEFT_OTLP_HTTP_ENDPOINT="$http_ep" WEFT_METRICS_ENDPOINT="$metrics" \
  WEFT_HEALTH_ENDPOINT="$health" WEFT_STATUS_ENDPOINT="$status"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "Weft's status page will be at http://$status/ : every decision, kept and dropped, with why"

say "building weft"
cargo build --quiet -p weft --bin weft

started_services=0
if ! bash scripts/services.sh status >/dev/null 2>&1; then started_services=1; fi
if [ "$started_services" = 1 ]; then
  say "starting the local Jaeger v2 and OpenSearch (first run installs them: several minutes)"
else
  say "Jaeger and OpenSearch are already running (make services-up): using them"
fi
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
  else
    say "Jaeger and OpenSearch keep running (they were before the demo): make services-down stops them"
  fi
}
# Ctrl-C is how the demo ends: clean up and exit 0, so make does not report "Error 130".
interrupted() {
  printf '\n'
  cleanup
  exit 0
}
trap cleanup EXIT
trap interrupted INT TERM

say "starting weft with config/demo.yaml (log: target/demo/weft.log)"
./target/debug/weft --config config/demo.yaml >"$out/weft.log" 2>&1 &
weft_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://$health/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$weft_pid" 2>/dev/null; then echo "weft exited; its log:"; cat "$out/weft.log"; exit 1; fi
  sleep 0.1
done
say "the status page is live: http://$status/ (open it now and watch the shop's traffic arrive)"

say "running the demo shop: 300 orders across frontend, checkout, payments, inventory"
"$python" examples/demo/shop.py --endpoint "http://$grpc" --requests 300 --rate 100 --summary "$out/summary.json"

say "waiting for the tail sampler's decisions (decision_wait: 5s)"
decided() { curl -fsS "http://$status/api/decisions?limit=1" 2>/dev/null | "$python" -c 'import json,sys; print(json.load(sys.stdin)["matching"])' 2>/dev/null || echo 0; }
for _ in $(seq 1 150); do
  [ "$(decided)" -ge 300 ] && break
  sleep 0.2
done
sleep 1.5 # the exporters' batches leave within a second of the decisions

metric() { curl -fsS "http://$metrics/metrics" | awk -v s="$1" 'index($0, s) == 1 { sum += $NF } END { printf "%d", sum }'; }
kept=$(metric 'otelcol_processor_tail_sampling_global_count_traces_sampled_total{processor="tail_sampling",sampled="true"}')
dropped=$(metric 'otelcol_processor_tail_sampling_global_count_traces_sampled_total{processor="tail_sampling",sampled="false"}')
spans_in=$(metric 'otelcol_receiver_accepted_spans_total')
logs_in=$(metric 'otelcol_receiver_accepted_log_records_total')
spans_out=$(metric 'otelcol_exporter_sent_spans_total{exporter="otlp/jaeger"}')
logs_out=$(metric 'otelcol_exporter_sent_log_records_total{exporter="elasticsearch"}')

trace_id=$("$python" -c 'import json,sys; s=json.load(open(sys.argv[1])); print((s["error"] or s["slow"] or s["log_error"])[0])' "$out/summary.json")
dropped_id=$("$python" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["ok"][0])' "$out/summary.json")
index="go-logs-$(date -u +%Y.%m.%d)"
curl -fsS -X POST "$OPENSEARCH_URL/$index/_refresh" >/dev/null 2>&1 || true
count() { curl -fsS "$OPENSEARCH_URL/$index/_count?q=$1" 2>/dev/null | "$python" -c 'import json,sys; print(json.load(sys.stdin)["count"])' 2>/dev/null || echo "?"; }
slow_logs=$(count 'weft.policy:slow')

cat <<TXT

Status page               http://$status/
  a kept trace            http://$status/#/trace/$trace_id
  a dropped trace         http://$status/#/trace/$dropped_id
  (its JSON: curl -s http://$status/api/decisions, /api/traces/<id>, /api/pipelines, /api/window)

What happened
  received        $spans_in spans, $logs_in log records
  traces decided  $((kept + dropped)): kept $kept (errors, slow requests, ERROR logs), dropped $dropped
  exported        $spans_out spans to Jaeger (with their logs as span logs), $logs_out log records to OpenSearch
                  (logs of kept traces, enriched with weft.policy, weft.root_service, ...,
                   plus WARN-and-above logs of dropped traces, marked weft.sampled=false)

Where else to look (this Jaeger has no UI and there is no Kibana here: their APIs)
  the kept trace in Jaeger, its logs inside its spans:
    curl -s $JAEGER_QUERY_URL/api/traces/$trace_id | python3 -m json.tool | less
  its logs in OpenSearch (the Kibana query trace_id:"$trace_id"):
    curl -s '$OPENSEARCH_URL/$index/_search?pretty' -H 'Content-Type: application/json' \\
      -d '{"query":{"query_string":{"query":"trace_id:\\"$trace_id\\""}}}'
  the $slow_logs log records of slow traces in today's index, this run's and earlier ones
  (OpenSearch returns 10 hits unless asked for more: size=1000 below):
    curl -s '$OPENSEARCH_URL/$index/_search?pretty&size=1000&q=weft.policy:slow'
  Weft's own metrics:   curl -s http://$metrics/metrics
  Weft's log:           target/demo/weft.log

Weft keeps running: point your SDK at http://$grpc (gRPC) or http://$http_ep (HTTP).
TXT
if [ "$started_services" = 1 ]; then
  echo "Ctrl-C stops Weft, and the Jaeger and OpenSearch this demo started."
else
  echo "Ctrl-C stops Weft. Jaeger and OpenSearch were running before the demo and stay up: make services-down stops them."
fi
wait "$weft_pid"
