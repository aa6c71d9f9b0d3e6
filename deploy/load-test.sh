#!/usr/bin/env bash
# Load test: wrk at 16 connections for ~15 s against
#   1. GET /bench/ceiling (fixed answer: the HTTP stack's ceiling),
#   2. a non-CAR-T patient-view request,
#   3. a 200-entry ICU patient-view request (generated below),
#   4. the same ICU request through a naive handler (fhirbolt over every prefetch value),
#   5. a ~10 KB patient-view request,
#   6. a real ~237 KB non-CAR-T Synthea patient-view request (issue 9, built from
#      tests/realworld/patients/synthea-0a22e990-large.json),
#   7. the read-and-discard ceiling: the same body POSTed to a route that does not exist
#      (the server reads the bytes and answers 404; "Non-2xx" is expected there),
# then prints req/s, p50/p99 and the server's peak RSS (VmHWM), and then, on a fresh server:
#   8. worst-rss: the worst request under the 4 MiB body limit (a CAR-T patient whose
#      ~3,900 in-window Observations each carry 32 unknown elements, every one typed-parsed),
#      with /healthz latency sampled while it saturates the grading pool, and the peak RSS;
#   9. an order-select at the draft-order cap (100 tocilizumab orders).
#
# Usage: deploy/load-test.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail

DURATION="${1:-15}"
CONNECTIONS="${2:-16}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk" >&2
    if [[ "$(id -u)" == 0 ]]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi

echo "building release" >&2
(cd "$ROOT" && cargo build --release --quiet)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/crs-cds"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"

python3 - "$WORK" <<'PY'
import json, sys, uuid
work = sys.argv[1]
pid = "load-p1"

def bundle(entries):
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r} for r in entries]}

def empty():
    return bundle([])

from datetime import datetime, timedelta, timezone
NOW = datetime.now(timezone.utc).replace(microsecond=0)

def ago(hours):
    return (NOW - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")

def obs(i, code, value, unit, cat="vital-signs", hours_ago=0.0):
    return {"resourceType": "Observation", "id": f"o{i}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": cat}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": ago(hours_ago),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}

def request(prefetch):
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/u1", "patientId": pid}, "prefetch": prefetch}

patient = {"resourceType": "Patient", "id": pid, "birthDate": "1968-04-02", "gender": "female"}
infusion = {"resourceType": "Procedure", "id": "inf1", "status": "completed",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228"}],
                     "text": "axicabtagene ciloleucel infusion"},
            "subject": {"reference": f"Patient/{pid}"}, "performedDateTime": ago(4 * 24)}

base = {"patient": patient, "vitals": empty(), "neuro": empty(), "labs": empty(),
        "medicationAdministrations": empty(), "medicationRequests": empty(), "procedures": empty()}
json.dump(request(base), open(f"{work}/non-cart.json", "w"))

# An ICU day-4 patient, 200 entries: hourly temperature and systolic pressure over the last
# 3 days (a third of them inside the 24-h grading window), labs every 6 h, a running
# norepinephrine infusion, acetaminophen doses, and the CAR-T infusion.
vitals = [obs(i, "8310-5", round(37.2 + (i % 20) / 10, 1), "Cel", hours_ago=i + 0.5) for i in range(72)]
vitals += [obs(100 + i, "8480-6", 85 + i % 30, "mm[Hg]", hours_ago=i + 0.5) for i in range(72)]
labs = [obs(300 + i, code, value, unit, cat="laboratory", hours_ago=6 * (i // 4) + 1)
        for i, (code, value, unit) in enumerate([("2276-4", 2400, "ng/mL"), ("1988-5", 95, "mg/L"),
                                                  ("1920-8", 48, "U/L"), ("2160-0", 1.1, "mg/dL")] * 10)]
mas = [{"resourceType": "MedicationAdministration", "id": f"apap{i}", "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "161"}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": ago(6 * i + 2)} for i in range(13)]
mas.append({"resourceType": "MedicationAdministration", "id": "ne1", "status": "in-progress",
            "medicationCodeableConcept": {"text": "norepinephrine 4 mg in 250 mL"},
            "subject": {"reference": f"Patient/{pid}"}, "effectivePeriod": {"start": ago(5)}})
icu = dict(base, vitals=bundle(vitals), labs=bundle(labs), medicationAdministrations=bundle(mas),
           procedures=bundle([infusion]))
json.dump(request(icu), open(f"{work}/icu-200.json", "w"))

# No prefetch and a FHIR server that is down: every call must answer 412 at once.
down = request({})
down.pop("prefetch")
down["fhirServer"] = "http://127.0.0.1:9/fhir"
json.dump(down, open(f"{work}/fhir-down.json", "w"))

# About 10 KB.
small = dict(base, vitals=bundle(vitals[:12] + vitals[72:80]), procedures=bundle([infusion]))
json.dump(request(small), open(f"{work}/pv-10k.json", "w"))

# Worst case under the 4 MiB limit: in-window temperatures with 32 unknown elements each.
heavy = []
i = 0
while True:
    o = obs(5000 + i, "8310-5", 38.0 + (i % 10) / 10, "Cel", hours_ago=(i % 2000) / 100)
    for k in range(32):
        o[f"unknownElement{k}"] = k
    heavy.append(o)
    i += 1
    if i % 100 == 0 and len(json.dumps(heavy)) > 3_700_000:
        break
worst = dict(base, vitals=bundle(heavy), procedures=bundle([infusion]))
json.dump(request(worst), open(f"{work}/worst-4m.json", "w"))

# order-select at the draft-order cap: 100 tocilizumab orders.
orders = [{"resource": {"resourceType": "MedicationRequest", "id": f"toci{n}", "status": "draft",
           "intent": "order", "subject": {"reference": f"Patient/{pid}"},
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "612865"}], "text": "tocilizumab"},
           "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 800, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]}}
          for n in range(100)]
sel = request(dict(base, procedures=bundle([infusion])))
sel["hook"] = "order-select"
sel["context"]["selections"] = [f"MedicationRequest/toci{n}" for n in range(100)]
sel["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": orders}
json.dump(sel, open(f"{work}/order-select-100.json", "w"))
PY

# A real non-CAR-T patient (Synthea, about 237 KB): the whole Bundle as one prefetch key,
# the other keys empty searchsets (issue 9, "Triage performance").
python3 - "$WORK" "$ROOT/tests/realworld/patients/synthea-0a22e990-large.json" <<'PY'
import json, sys, uuid
work, path = sys.argv[1], sys.argv[2]
everything = json.load(open(path))
pid = next(e["resource"]["id"] for e in everything["entry"] if e["resource"]["resourceType"] == "Patient")
empty = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
prefetch = {k: empty for k in ["patient", "vitals", "neuro", "labs", "medicationAdministrations",
                               "medicationRequests", "procedures"]}
prefetch["vitals"] = everything
req = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
       "context": {"userId": "Practitioner/u1", "patientId": pid}, "prefetch": prefetch}
json.dump(req, open(f"{work}/real-synthea.json", "w"), separators=(",", ":"))
PY

cat > "$WORK/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY_FILE"), "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

CRS_CDS_BENCH_ENDPOINTS=1 \
CRS_CDS_BIND="127.0.0.1:$PORT" \
CRS_CDS_FEEDBACK_DATABASE_URL="sqlite://$WORK/feedback.db?mode=rwc" \
RUST_LOG=warn \
    "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$BASE/healthz" >/dev/null

run() {
    local name="$1" url="$2" body="${3:-}"
    local out
    if [[ -n "$body" ]]; then
        out="$(BODY_FILE="$body" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$url")"
    else
        out="$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url")"
    fi
    local rps p50 p99 size non2xx sockerr rss
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
    sockerr="$(awk '/Socket errors/ {print $3,$4,$5,$6,$7,$8,$9,$10}' <<<"$out")"
    size="$([[ -n "$body" ]] && wc -c <"$body" || echo 0)"
    rss="$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
    printf '%-24s %8s B  %10s req/s  p50 %-9s p99 %-9s errors: %s  RSS after: %s kB\n' "$name" "$size" "$rps" \
        "$p50" "$p99" "${non2xx:+non-2xx $non2xx }${sockerr:-none}" "$rss"
}

echo "wrk: $CONNECTIONS connections, ${DURATION}s each, server pid $SERVER_PID"
echo "server RSS at start: $(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status") kB"
run "ceiling" "$BASE/bench/ceiling"
run "non-CAR-T patient" "$BASE/cds-services/crs-icans-grading" "$WORK/non-cart.json"
run "ICU 200 entries" "$BASE/cds-services/crs-icans-grading" "$WORK/icu-200.json"
run "patient-view ~10 KB" "$BASE/cds-services/crs-icans-grading" "$WORK/pv-10k.json"
run "FHIR down (412 expected)" "$BASE/cds-services/crs-icans-grading" "$WORK/fhir-down.json"
run "real Synthea non-CAR-T" "$BASE/cds-services/crs-icans-grading" "$WORK/real-synthea.json"
run "read-and-discard (404)" "$BASE/no-such-route" "$WORK/real-synthea.json"
echo "server peak RSS (service endpoints): $(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER_PID/status")"
# Last, so the naive handler's own memory does not count against the service.
run "ICU naive fhirbolt" "$BASE/bench/naive-fhirbolt" "$WORK/icu-200.json"
echo "server peak RSS (including the naive handler): $(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER_PID/status")"

# 6-7 on a fresh server, so its peak RSS is the worst request's own.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
CRS_CDS_BIND="127.0.0.1:$PORT" \
CRS_CDS_FEEDBACK_DATABASE_URL="sqlite://$WORK/feedback2.db?mode=rwc" \
RUST_LOG=warn \
    "$BIN" serve >"$WORK/server2.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "fresh server RSS at start: $(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status") kB"
# /healthz latency sampled every 0.2 s while the worst request saturates the pool.
( while kill -0 "$SERVER_PID" 2>/dev/null; do
      curl -o /dev/null -s -m 5 -w '%{http_code} %{time_total}\n' "$BASE/healthz" || echo "000 5"
      sleep 0.2
  done >"$WORK/healthz.txt" ) &
PROBE_PID=$!
run "worst-rss (4 MiB, 32 unknown/entry)" "$BASE/cds-services/crs-icans-grading" "$WORK/worst-4m.json"
kill "$PROBE_PID" 2>/dev/null || true
wait "$PROBE_PID" 2>/dev/null || true
echo "worst request: server peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER_PID/status")"
sort -k2 -n "$WORK/healthz.txt" | awk '{n++; t[n]=$2; if ($1 != "200") bad++} END {
    if (n == 0) { print "healthz under saturation: no samples"; exit }
    printf "healthz under saturation: %d samples, p50 %.3f s, max %.3f s, non-200 %d\n", n, t[int((n+1)/2)], t[n], bad+0 }'
run "order-select 100 orders" "$BASE/cds-services/cart-toxicity-order-select" "$WORK/order-select-100.json"
echo "server peak RSS (after order-select): $(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER_PID/status")"
