#!/usr/bin/env bash
# Seeds the fuzz corpora from the fixtures: whole requests for `request`, every
# prefetch value and draft-order Bundle for `adapter`. The corpora are not committed.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/request corpus/adapter
for f in ../fixtures/requests/*.json; do
  cp "$f" "corpus/request/$(basename "$f")"
  python3 - "$f" <<'PY'
import json, sys, os
req = json.load(open(sys.argv[1]))
name = os.path.basename(sys.argv[1])[:-5]
docs = dict(req.get("prefetch") or {})
if (req.get("context") or {}).get("draftOrders"):
    docs["draftOrders"] = req["context"]["draftOrders"]
for k, v in docs.items():
    if v is not None:
        with open(f"corpus/adapter/{name}-{k}.json", "w") as out:
            json.dump(v, out)
PY
done
ls corpus/request | wc -l; ls corpus/adapter | wc -l
