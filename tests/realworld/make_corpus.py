#!/usr/bin/env python3
"""Builds tests/realworld/ from public FHIR R4 patient bundles (stdlib only).

Usage: python3 tests/realworld/make_corpus.py SYNTHEA_REPO INFERNO_REPO
where SYNTHEA_REPO is a git checkout (or bare mirror) of smart-on-fhir/generated-sample-data
and INFERNO_REPO one of inferno-framework/inferno-reference-server-data. The sources are
read with `git show HEAD:<path>`; the output files are committed, so the tests never need
the sources.

Each patient bundle is trimmed to what matters (Patient, Observations, MedicationRequests,
MedicationAdministrations, Medications, Procedures, the latest first), keeping the
resources exactly as published. Two large ones are kept near 237 KB for the triage
benchmark and the load test.

The expected file of each patient is DERIVED HERE FROM THE RULES (`derive`), not from the
service: `at` is two hours after the patient's latest temperature (else latest
Observation), the added CAR-T infusion is three days before `at`, the window is 24 h.
RULES.md A.1: every temperature below 38.0 Cel and nothing waiving the fever requirement
given since the infusion -> fever gate closed, CRS 0; no temperature -> CRS not
assessable and "no temperature" missing; no systolic pressure and no running vasopressor
-> blood pressure missing; no device, flow or ventilation -> oxygen missing; no ICE/CAPD
or level of consciousness -> ICANS not assessed (no grade, missing). A patient whose data
the rules would grade otherwise (a fever, a running vasopressor) is replayed without the
infusion only. Without the infusion every patient must give no infusion (patient-view
answers no cards).
"""
import datetime as dt
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TEMP_CODES = {"8310-5", "8331-1", "8332-9", "8328-7", "8333-7", "8329-5", "75539-7",
              "76010-8", "76011-6", "60836-4", "60838-0"}
NEURO_CODES = {"80294-2"}
KEEP = {"Patient", "Observation", "MedicationRequest", "MedicationAdministration",
        "Medication", "Procedure"}
# Drugs that waive the fever requirement (RULES.md A.1 gate 2), by RxNorm ingredient and name.
WAIVE_WORDS = ("acetaminophen", "paracetamol", "tylenol", "tocilizumab", "actemra",
               "dexamethasone", "methylprednisolone", "hydrocortisone", "prednisone",
               "siltuximab", "anakinra")
NEURO_MISSING = ("no ICE/CAPD score or level of consciousness in the last 24 h "
                 "(ICANS not assessed)")


def show(repo, path):
    return subprocess.run(["git", "-C", repo, "show", f"HEAD:{path}"], check=True,
                          capture_output=True).stdout.decode("utf-8")


def ls(repo, prefix):
    out = subprocess.run(["git", "-C", repo, "ls-tree", "-r", "-l", "HEAD", prefix],
                         check=True, capture_output=True).stdout.decode()
    rows = []
    for line in out.splitlines():
        meta, path = line.split("\t")
        size = meta.split()[3]
        if size.isdigit():
            rows.append((int(size), path))
    return sorted(rows)


def when(r):
    t = (r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start")
         or r.get("performedDateTime") or (r.get("performedPeriod") or {}).get("start")
         or r.get("authoredOn") or r.get("issued"))
    if not t:
        return None
    if len(t) == 10:
        t += "T00:00:00+00:00"
    return dt.datetime.fromisoformat(t.replace("Z", "+00:00"))


def codes(cc):
    return {c.get("code") for c in (cc or {}).get("coding", [])}


def compact(x):
    return json.dumps(x, ensure_ascii=False, separators=(",", ":"))


def latest_temperature(bundle):
    times = [when(e["resource"]) for e in bundle["entry"]
             if e.get("resource", {}).get("resourceType") == "Observation"
             and codes(e["resource"].get("code")) & TEMP_CODES and when(e["resource"])]
    return max(times) if times else None


def trim(bundle, budget):
    """The Patient, the kept resources of the four days before the latest temperature,
    then the latest others, within `budget` bytes."""
    entries = [e for e in bundle["entry"] if e.get("resource", {}).get("resourceType") in KEEP]
    patient = [e for e in entries if e["resource"]["resourceType"] == "Patient"]
    rest = [e for e in entries if e["resource"]["resourceType"] != "Patient"]
    epoch = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
    last = anchor(bundle)
    def priority(e):
        t = when(e["resource"]) or epoch
        recent = last is not None and last - dt.timedelta(days=4) <= t <= last + dt.timedelta(hours=2)
        return (recent, t)
    rest.sort(key=priority, reverse=True)
    out, size = list(patient), len(compact(patient))
    for e in rest:
        n = len(compact(e)) + 1
        if size + n > budget:
            continue
        out.append(e)
        size += n
    return {"resourceType": "Bundle", "type": bundle.get("type", "collection"), "entry": out}


SBP = "8480-6"
BP_PANELS = {"85354-9", "55284-4"}
FLOW = "3151-8"
OXIMETRY = {"59408-5", "2708-6"}
DEVICE_OBS = {"oxygen-delivery"}
# Ventilation and oxygen-delivery procedures (fhir-profiles ValueSets).
OXYGEN_PROCEDURES = {"47545007", "243142003", "428311008", "40617009", "286812008", "243150007",
                     "59427005", "243144002", "371907003", "371908008", "57485005", "426990007"}
PRESSOR_WORDS = ("norepinephrine", "noradrenaline", "levophed", "epinephrine", "adrenaline",
                 "phenylephrine", "dopamine", "vasopressin", "angiotensin ii", "giapreza")
MISSING = {
    "temperature": "no temperature in the last 24 h",
    "bp": "no systolic blood pressure in the last 24 h (hypotension not assessed)",
    "oxygen": "no oxygen device, flow or ventilation record in the last 24 h (hypoxia not assessed)",
    "neuro": NEURO_MISSING,
}


def anchor(bundle):
    """The instant the grading is placed after: the latest temperature, else the latest
    Observation."""
    last = latest_temperature(bundle)
    if last is None:
        times = [when(e["resource"]) for e in bundle["entry"]
                 if e.get("resource", {}).get("resourceType") == "Observation" and when(e["resource"])]
        last = max(times) if times else None
    return last


def derive(bundle):
    """The expected subset for the CAR-T variant, or None when the rules are not clear
    from the data (a fever, a unit other than Cel, a running or ambiguous vasopressor)."""
    res = [e["resource"] for e in bundle["entry"]]
    patients = [r for r in res if r["resourceType"] == "Patient"]
    last = anchor(bundle)
    if len(patients) != 1 or not patients[0].get("birthDate") or last is None:
        return None
    at = last + dt.timedelta(hours=2)
    start = at - dt.timedelta(hours=24)
    infusion = at - dt.timedelta(days=3)
    inside = lambda r: when(r) is not None and start < when(r) <= at
    obs = [r for r in res if r["resourceType"] == "Observation" and inside(r)
           and r.get("status") in ("final", "amended", "corrected", "preliminary")]
    temps = []
    for r in obs:
        if codes(r.get("code")) & TEMP_CODES:
            q = r.get("valueQuantity") or {}
            if q.get("code") != "Cel":
                return None
            temps.append(q["value"])
    if temps and max(temps) >= 38.0:
        return None
    sbp = any(codes(r.get("code")) & {SBP} or (codes(r.get("code")) & BP_PANELS and any(
        SBP in codes(c.get("code")) and (c.get("valueQuantity") or {}).get("code") == "mm[Hg]"
        for c in r.get("component", []))) for r in obs)
    oxygen = any(codes(r.get("code")) & ({FLOW} | DEVICE_OBS) or (codes(r.get("code")) & OXIMETRY and any(
        FLOW in codes(c.get("code")) for c in r.get("component", []))) for r in obs)
    def performed_in_window(r):
        if r.get("status") == "in-progress":
            return when(r) is not None and when(r) <= at
        end = (r.get("performedPeriod") or {}).get("end") or r.get("performedDateTime")
        if r.get("status") != "completed" or not end:
            return False
        end = dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
        return start < end <= at
    oxygen = oxygen or any(r["resourceType"] == "Procedure" and codes(r.get("code")) & OXYGEN_PROCEDURES
                           and performed_in_window(r) for r in res)
    for r in res:
        if r["resourceType"] == "Observation" and codes(r.get("code")) & NEURO_CODES:
            return None
        text = json.dumps(r).lower()
        if r["resourceType"] == "MedicationAdministration":
            if any(w in text for w in WAIVE_WORDS + PRESSOR_WORDS) and when(r) and when(r) >= infusion:
                return None
        if r["resourceType"] == "MedicationRequest" and r.get("status") == "active":
            if any(w in text for w in PRESSOR_WORDS):
                # A vasopressor order counts as running only when not as-needed and an
                # infusion or authored in the window (FHIR-INPUTS.md "Running vasopressor").
                prn = any(d.get("asNeededBoolean") is True or "asNeededCodeableConcept" in d
                          for d in r.get("dosageInstruction", []))
                if not prn:
                    return None  # not derived here: skip the patient
    missing = []
    if not temps:
        missing.append(MISSING["temperature"])
    if not sbp:
        missing.append(MISSING["bp"])
    if not oxygen:
        missing.append(MISSING["oxygen"])
    missing.append(MISSING["neuro"])
    iso = lambda t: t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if temps:
        crs, why = 0, (f"max temperature in the 24 h window {max(temps):.2f} Cel < 38.0 and nothing "
                       "waiving the fever requirement since the infusion: fever gate closed, CRS 0 "
                       "(RULES.md A.1)")
    else:
        crs, why = None, ("no temperature in the 24 h window and nothing waiving the fever "
                          "requirement: CRS not assessable (RULES.md A.1), temperature missing")
    why += ("; " + ("a systolic pressure in the window" if sbp else "no systolic pressure and no "
            "running vasopressor: blood pressure missing") + "; no oxygen record: oxygen missing"
            if not oxygen else "; oxygen recorded")
    why += "; no ICE/CAPD or level of consciousness: ICANS not assessed"
    return {
        "at": iso(at),
        "infusionAt": iso(infusion),
        "patientId": patients[0]["id"],
        "why": why,
        "crsGrade": crs,
        "icansGrade": None,
        "flags": [],
        "missing": missing,
    }


README = """# Real-world corpus (issue 9)

Public FHIR R4 patient Bundles, trimmed, replayed by `tests/realworld.rs` (module `realworld`
of the one integration binary): each patient once as sent (it must give no CAR-T infusion:
patient-view answers no cards) and, when `expected/<name>.json` has an `infusionAt`, once
with an added CAR-T infusion Procedure (CPT 38228) graded at `at`, compared by subset
(`crsGrade`, `icansGrade`, `flags`, `missing`) with the expected file. The same files feed the
prefilter property tests and the triage benchmark (`synthea-0a22e990-large`, 237 KB).

- `patients/`: the Bundles. Only Patient, Observation, MedicationRequest,
  MedicationAdministration, Medication and Procedure entries are kept, unchanged, those of the
  four days before the latest temperature first, then the latest others, up to 40 KB (two
  Synthea patients up to 237 KB). Synthetic patients only (Synthea, Inferno): no real data.
- `expected/`: derived from RULES.md by `make_corpus.py` (`derive`, see its docstring and each
  file's `why`), never from the service's output. There is no way to rewrite them from the
  service; if one fails, decide from RULES.md which side is wrong.
- Sources: Synthea patients of smart-on-fhir/generated-sample-data `R4/SYNTHEA` (every 20th by
  size, plus Alexis Toy, one of the 57 with an as-needed epinephrine auto-injector), and the US
  Core test patients of inferno-framework/inferno-reference-server-data `resources/` (patient 85
  has Synthea's COVID-19 "Oxygen administration by mask" Procedures, SNOMED 371908008, from 1977:
  outside the window). Regenerate with
  `python3 tests/realworld/make_corpus.py <generated-sample-data checkout> <inferno-reference-server-data checkout>`.

"""


def main():
    synthea, inferno = sys.argv[1], sys.argv[2]
    sources = []
    rows = ls(synthea, "R4/SYNTHEA/")
    # Every 20th Synthea patient by size, smallest first: a spread of ages and histories.
    picked = [path for _, path in rows[::20]]
    # One of the 57 Synthea patients with an active as-needed epinephrine auto-injector
    # (RxNorm 1870230), the misread of issue 9.
    picked.append("R4/SYNTHEA/Alexis_Toy_68cd1181-6359-4047-a77f-a165d7912480.json")
    for path in picked:
        sources.append(("synthea", synthea, path, "smart-on-fhir/generated-sample-data"))
    for path in ["resources/uscore_bundle_patient_85.json",
                 "resources/uscore_bundle_patient_355.json",
                 "resources/uscore_bundle_patient_907.json",
                 "resources/uscore_bundle_patient_908.json",
                 "resources/us_quality_core_bundle_patient.json",
                 "resources/uscore_bundle_patient_client_test.json"]:
        sources.append(("inferno", inferno, path, "inferno-framework/inferno-reference-server-data"))
    os.makedirs(os.path.join(HERE, "patients"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "expected"), exist_ok=True)
    readme_rows, large = [], 0
    for kind, repo, path, repo_name in sources:
        try:
            bundle = json.loads(show(repo, path))
        except (subprocess.CalledProcessError, json.JSONDecodeError):
            continue  # a source file not present in the mirror
        if bundle.get("resourceType") != "Bundle" or not any(
                e.get("resource", {}).get("resourceType") == "Patient" for e in bundle.get("entry", [])):
            continue  # not a patient bundle (Synthea also ships hospital/practitioner files)
        budget = 237_000 if large < 2 and kind == "synthea" and len(compact(bundle)) > 600_000 else 40_000
        trimmed = trim(bundle, budget)
        expected = derive(trimmed)
        name = f"{kind}-{os.path.basename(path).replace('.json', '')}"
        if kind == "synthea":
            name = "synthea-" + os.path.basename(path).split("_")[-1].split("-")[0]
        status = "used" if expected else "no-infusion check only"
        if budget > 40_000:
            large += 1
            name += "-large"
        with open(os.path.join(HERE, "patients", name + ".json"), "w") as f:
            f.write(compact(trimmed))
        if expected is None:
            # The rules give no clear CAR-T answer from this patient's data: the file is
            # still replayed without an infusion.
            expected = {"hasInfusion": False,
                        "patientId": [r for r in (e["resource"] for e in trimmed["entry"])
                                      if r["resourceType"] == "Patient"][0]["id"],
                        "why": "no temperature in the data, a fever, or neuro data: only the no-infusion replay"}
        with open(os.path.join(HERE, "expected", name + ".json"), "w") as f:
            json.dump(expected, f, indent=1, ensure_ascii=False)
            f.write("\n")
        readme_rows.append(f"| `{name}` | {repo_name} `{path}` | {len(trimmed['entry'])} | {status} |")
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write(README)
        f.write("| file | source (repository, path) | entries kept | CAR-T variant |\n|---|---|---|---|\n")
        f.write("\n".join(readme_rows) + "\n")


if __name__ == "__main__":
    main()
