//! Grade-based management (RULES.md B.3), as recommendation lines for the cards.

use super::facts::CarTProduct;
use super::flags::Flag;

/// Which card a recommendation belongs on (RULES.md §7 S14: per-grade actions appear
/// on the grading card only; each other card carries its own single point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The grading card: actions for the CRS and ICANS grades.
    Grade,
    /// The antifungal-prophylaxis card.
    Antifungal,
    /// The GM-CSF card.
    GmCsf,
    /// The HLH/MAS card.
    Hlh,
}

impl Scope {
    /// A stable wire name.
    pub fn key(self) -> &'static str {
        match self {
            Scope::Grade => "grade",
            Scope::Antifungal => "antifungal",
            Scope::GmCsf => "gm-csf",
            Scope::Hlh => "hlh",
        }
    }
}

/// One recommended action, with its source tag from RULES.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recommendation {
    /// What to do.
    pub text: &'static str,
    /// The source, as tagged in RULES.md ("ASCO", "CARTOX", "SEED-001"…).
    pub source: &'static str,
    /// The card it belongs on (RULES.md §7 S14).
    pub scope: Scope,
}

const fn r(text: &'static str, source: &'static str) -> Recommendation {
    Recommendation {
        text,
        source,
        scope: Scope::Grade,
    }
}

const fn scoped(text: &'static str, source: &'static str, scope: Scope) -> Recommendation {
    Recommendation {
        text,
        source,
        scope,
    }
}

/// The line that says why tocilizumab is not advised (RULES.md §7 S1).
pub const TOCILIZUMAB_NOT_RECOMMENDED: &str =
    "tocilizumab not recommended: ICANS ≥ 2 with CRS ≤ 1 (steroids preferred)";

/// The recommended actions for the grades and flags (RULES.md B.3 tables).
///
/// RULES.md §7 S1: "with concurrent CRS" in the ICANS table means CRS ≥ 2; with the
/// tocilizumab-with-ICANS flag set (ICANS ≥ 2, CRS ≤ 1) no line recommends or suggests
/// considering tocilizumab, and one line says why. RULES.md §7 S2: at CRS 1
/// tocilizumab appears only as the CRS G1 "consider" line.
pub fn recommendations(
    crs: Option<u8>,
    icans: Option<u8>,
    product: Option<CarTProduct>,
    flags: &[Flag],
) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let early = product.is_some_and(CarTProduct::early_intervention);
    // RULES.md §7 S1: ICANS ≥ 2 with CRS ≤ 1 (the flag carries the policy switch).
    let no_tocilizumab = flags.contains(&Flag::TocilizumabWithIcans);

    match crs {
        Some(1) => {
            out.push(r("CRS G1: supportive care: antipyretic (acetaminophen), IV hydration, symptomatic care", "ASCO"));
            out.push(r("Work up infection: blood and urine cultures, chest X-ray; if neutropenic, empiric broad-spectrum antibiotics and G-CSF (filgrastim); GM-CSF (sargramostim) not recommended", "ASCO"));
            if !no_tocilizumab {
                out.push(r("Consider tocilizumab for persistent (> 3 days) or refractory fever, or in high-risk patients", "CARTOX"));
            }
            if early && !no_tocilizumab {
                out.push(r(
                    "Axi-cel/brexu-cel: earlier tocilizumab or steroids may be considered",
                    "ASCO",
                ));
            }
        }
        Some(2) => {
            out.push(r("CRS G2: tocilizumab 8 mg/kg IV over 1 h (12 mg/kg under 30 kg; max 800 mg); repeat q8h if no improvement; max 3 doses in 24 h and 4 in total", "ASCO"));
            out.push(r(
                "IV fluid boluses and supplemental oxygen; telemetry and pulse oximetry",
                "ASCO",
            ));
            out.push(r("If hypotension persists after fluids and 1-2 tocilizumab doses: consider dexamethasone 10 mg IV q12-24h, start vasopressors and consider ICU", "SEED-001, CARTOX"));
        }
        Some(3) => {
            out.push(r("CRS G3: ICU care, vasopressors, echocardiogram", "ASCO"));
            out.push(r("Tocilizumab as for G2 if the 24-h maximum is not reached, plus dexamethasone 10 mg IV q6h, tapered quickly once improved; if refractory, manage as G4", "ASCO"));
        }
        Some(4) => {
            out.push(r(
                "CRS G4: ICU care, mechanical ventilation as needed",
                "ASCO",
            ));
            out.push(r("Tocilizumab as for G2 if the 24-h maximum is not reached, plus methylprednisolone 500 mg IV q12h for 3 days, then taper (250 mg q12h × 2 d, 125 mg q12h × 2 d, 60 mg q12h until CRS ≤ G1)", "ASCO"));
            out.push(r("If not improving: methylprednisolone 1000 mg IV twice daily, or alternative therapy", "ASCO"));
            out.push(r("Refractory CRS: anakinra, siltuximab, ruxolitinib, cyclophosphamide, ATG (limited evidence)", "ASCO, SEED-000"));
        }
        _ => {}
    }

    // RULES.md §7 S1, S2: the "with CRS" rows apply from CRS 2.
    let with_crs = crs.is_some_and(|g| g >= 2);
    if icans.is_some_and(|g| g >= 1) {
        out.push(r("ICANS work-up: ICE at least twice daily, neurology consult, aspiration precautions, correct hyponatremia; seizure prophylaxis (levetiracetam) for high-risk products or patients", "ASCO"));
    }
    if icans.is_some_and(|g| g >= 2) {
        out.push(r("MRI brain and EEG (grade ≥ 2)", "ASCO"));
    }
    if icans.is_some_and(|g| g >= 3) {
        out.push(r("Lumbar puncture (grade ≥ 3)", "ASCO"));
    }
    match (icans, with_crs) {
        (Some(1), false) => {
            out.push(r("ICANS G1: supportive care", "ASCO"));
            if early {
                out.push(r("Axi-cel/brexu-cel: dexamethasone may be started at ICANS G1", "ASCO"));
            }
        }
        (Some(1), true) => out.push(r("ICANS G1 with CRS: tocilizumab 8 mg/kg, with caution on repeated doses in ICANS; consider adding steroids after the first dose", "ASCO")),
        (Some(2), false) => out.push(r("ICANS G2: supportive care; dexamethasone 10 mg IV × 1-2 then reassess, repeat q6-12h if no improvement", "ASCO, SEED-000")),
        (Some(2), true) => {
            out.push(r("ICANS G2 with CRS: tocilizumab as for G1; if refractory after the first dose, dexamethasone 10 mg q6-12h or methylprednisolone 1 mg/kg q12h; consider ICU if CRS ≥ G2", "ASCO"));
        }
        (Some(3), false) => out.push(r("ICANS G3: ICU; dexamethasone 10 mg IV q6-12h or methylprednisolone 1 mg/kg q12h", "ASCO")),
        (Some(3), true) => out.push(r("ICANS G3 with CRS: ICU; tocilizumab, then steroids as for G2", "ASCO")),
        (Some(4), _) => {
            out.push(r("ICANS G4: ICU and airway protection; high-dose methylprednisolone 1000 mg/day", "ASCO"));
            out.push(r("Treat status epilepticus (benzodiazepine + levetiracetam) and cerebral edema (hyperventilation, hyperosmolar therapy, neurosurgery consult)", "ASCO"));
            if with_crs {
                out.push(r("Tocilizumab as well if the CRS criteria apply", "ASCO"));
            }
            out.push(r("Refractory ICANS: anakinra, siltuximab, ruxolitinib, cyclophosphamide, ATG, intrathecal hydrocortisone 50 mg + methotrexate 12 mg", "ASCO"));
        }
        _ => {}
    }
    if no_tocilizumab {
        out.push(r(TOCILIZUMAB_NOT_RECOMMENDED, "SEED-000"));
    }
    if flags.contains(&Flag::HlhSuspected) {
        out.push(scoped("Suspected HLH/MAS: anti-IL-6 plus corticosteroids from the start; if no improvement in 48 h, consider anakinra or etoposide", "CARTOX", Scope::Hlh));
    }
    if flags.contains(&Flag::AntifungalProphylaxis) {
        out.push(scoped("Steroids for CRS/ICANS: strongly consider antifungal prophylaxis; monitor CMV if steroids run longer than 4-5 days", "ASCO, SEED-002", Scope::Antifungal));
        out.push(scoped(
            "Taper steroids with care: ICANS flares have been reported with rapid tapers",
            "ASCO",
            Scope::Antifungal,
        ));
    }
    if flags.contains(&Flag::GmCsfAvoid) {
        out.push(scoped(
            "Do not use GM-CSF (sargramostim) after CAR-T; G-CSF (filgrastim) is acceptable",
            "ASCO, CARTOX",
            Scope::GmCsf,
        ));
    }
    out
}
