//! Tests for the safety decisions of RULES.md §7 (S1-S12), one clinical sentence each.
//! Every test here fails on the engine as it was before §7.

use super::testkit::*;
use super::*;

fn policy() -> Policy {
    Policy::default()
}

fn at_now(p: &PatientFacts) -> Assessment {
    assess(p, &[], NOW, &policy())
}

fn texts(a: &Assessment) -> Vec<&'static str> {
    a.recommendations.iter().map(|r| r.text).collect()
}

fn grading_lines_mentioning(a: &Assessment, word: &str) -> Vec<&'static str> {
    a.recommendations
        .iter()
        .filter(|r| r.scope == Scope::Grade && r.text.to_lowercase().contains(word))
        .map(|r| r.text)
        .collect()
}

fn with_weight(kg: f64) -> PatientFacts {
    let mut p = adult();
    p.weights = vec![Fact::new(
        Kg::new(kg).expect("valid"),
        ago(12.0),
        "Observation/w",
    )];
    p
}

fn toci_order(mg: f64) -> DoseOrder {
    DoseOrder {
        drug: Drug::Tocilizumab,
        amount: DoseAmount::Mg(mg),
        per_day: None,
        route: Some("IV".into()),
        source: Source("MedicationRequest/o".into()),
    }
}

fn check(order: &DoseOrder, p: &PatientFacts) -> DoseCheck {
    check_dose(order, p, NOW, &policy())
}

// ---------------------------------------------------------------- S1, S2

/// CRS 1 (fever) with ICANS 2 (ICE 5).
fn crs1_icans(ice_total: i64) -> PatientFacts {
    let mut p = febrile_adult(38.5);
    p.neuro_scores.clear();
    ice(&mut p, ice_total, 1.0);
    p
}

#[test]
fn icans_2_with_crs_1_gets_no_tocilizumab_advice_and_the_card_says_why() {
    let a = at_now(&crs1_icans(5));
    assert_eq!((a.crs.grade, a.icans.grade), (Some(1), Some(2)));
    assert!(a.flags.contains(&Flag::TocilizumabWithIcans));
    let toci: Vec<_> = grading_lines_mentioning(&a, "tocilizumab")
        .into_iter()
        .filter(|t| *t != TOCILIZUMAB_NOT_RECOMMENDED)
        .collect();
    assert!(toci.is_empty(), "{toci:?}");
    assert!(
        a.recommendations
            .iter()
            .any(|r| r.text == TOCILIZUMAB_NOT_RECOMMENDED && r.source == "SEED-000")
    );
    assert!(
        texts(&a)
            .iter()
            .any(|t| t.starts_with("ICANS G2: supportive care; dexamethasone"))
    );
}

#[test]
fn icans_3_with_crs_1_is_steroids_first_never_tocilizumab_then_steroids() {
    let a = at_now(&crs1_icans(2));
    assert_eq!((a.crs.grade, a.icans.grade), (Some(1), Some(3)));
    assert!(
        !texts(&a)
            .iter()
            .any(|t| t.contains("tocilizumab, then steroids"))
    );
    assert!(
        texts(&a)
            .iter()
            .any(|t| t.starts_with("ICANS G3: ICU; dexamethasone"))
    );
}

#[test]
fn axi_cel_with_icans_2_and_crs_1_gets_no_earlier_tocilizumab_line() {
    let a = at_now(&crs1_icans(5));
    assert!(!texts(&a).iter().any(|t| t.contains("earlier tocilizumab")));
}

#[test]
fn crs_1_with_icans_1_names_tocilizumab_only_as_the_consider_line() {
    let a = at_now(&crs1_icans(8));
    assert_eq!((a.crs.grade, a.icans.grade), (Some(1), Some(1)));
    let toci = grading_lines_mentioning(&a, "tocilizumab");
    assert!(!toci.is_empty());
    for t in toci {
        assert!(t.to_lowercase().contains("consider"), "{t}");
    }
    assert!(texts(&a).contains(&"ICANS G1: supportive care"));
}

#[test]
fn per_grade_actions_are_scoped_to_the_grading_card_and_the_others_carry_their_own() {
    let mut p = febrile_adult(38.7);
    running(&mut p, Drug::Norepinephrine, 2.0);
    let a = at_now(&p);
    assert!(a.recommendations.iter().any(|r| r.scope == Scope::Grade));
    let antifungal: Vec<_> = a
        .recommendations
        .iter()
        .filter(|r| r.scope == Scope::Antifungal)
        .collect();
    assert_eq!(antifungal.len(), 2);
    assert!(
        antifungal
            .iter()
            .all(|r| r.text.to_lowercase().contains("steroid"))
    );
}

// ---------------------------------------------------------------- S3

/// A never-febrile patient given dexamethasone 6 h ago, ICE 5, on 2 L/min.
fn never_febrile_on_dexamethasone() -> PatientFacts {
    let mut p = febrile_adult(37.0);
    temp(&mut p, 37.2, 20.0);
    p.neuro_scores.clear();
    ice(&mut p, 5, 1.0);
    p.oxygen_devices.clear();
    device(&mut p, OxygenDevice::NasalCannula, 1.0);
    flow(&mut p, 2.0, 1.0);
    given(&mut p, Drug::Dexamethasone, 6.0, Some(10.0));
    p
}

#[test]
fn dexamethasone_for_icans_in_a_never_febrile_patient_does_not_open_the_fever_gate() {
    let a = at_now(&never_febrile_on_dexamethasone());
    assert_eq!(a.crs.grade, Some(0));
    assert!(matches!(a.crs.fever_gate, FeverGate::Closed(_)));
    assert!(!a.flags.contains(&Flag::TocilizumabIndicated));
    assert!(a.flags.contains(&Flag::TocilizumabWithIcans));
    let masking = a.crs.masking_drug.expect("the drug that may mask a fever");
    assert_eq!(masking.drug, Drug::Dexamethasone);
    assert_eq!(masking.at, ago(6.0));
}

#[test]
fn a_masking_drug_is_named_only_when_hypotension_or_hypoxia_is_present() {
    let mut p = never_febrile_on_dexamethasone();
    p.oxygen_devices.clear();
    p.oxygen_flows.clear();
    device(&mut p, OxygenDevice::RoomAir, 1.0);
    assert_eq!(at_now(&p).crs.masking_drug, None);
}

#[test]
fn a_fever_recorded_before_the_dose_opens_the_waiver() {
    let mut p = never_febrile_on_dexamethasone();
    temp(&mut p, 38.4, 30.0);
    let a = at_now(&p);
    assert!(matches!(a.crs.fever_gate, FeverGate::Waived(_)));
    assert_eq!(a.crs.grade, Some(2));
    assert_eq!(a.crs.masking_drug, None);
}

#[test]
fn a_fever_only_after_the_last_dose_does_not_waive_a_later_fever_requirement() {
    let mut p = febrile_adult(37.0);
    given(&mut p, Drug::Acetaminophen, 40.0, Some(650.0));
    temp(&mut p, 38.4, 30.0);
    sbp(&mut p, 84.0, 1.0);
    assert_eq!(at_now(&p).crs.grade, Some(0));
}

#[test]
fn a_fever_before_the_infusion_does_not_document_crs() {
    let mut p = never_febrile_on_dexamethasone();
    temp(&mut p, 38.8, 80.0);
    assert_eq!(at_now(&p).crs.grade, Some(0));
}

#[test]
fn a_recorded_crs_grade_1_after_the_infusion_documents_crs_for_the_waiver() {
    let mut p = never_febrile_on_dexamethasone();
    p.recorded_crs_grades
        .push(Fact::new(1, ago(10.0), "Observation/crs"));
    assert_eq!(at_now(&p).crs.grade, Some(2));
    let mut p = never_febrile_on_dexamethasone();
    p.recorded_crs_grades
        .push(Fact::new(0, ago(10.0), "Observation/crs"));
    assert_eq!(
        at_now(&p).crs.grade,
        Some(0),
        "a recorded grade 0 is not CRS"
    );
}

#[test]
fn an_nsaid_after_a_documented_fever_opens_the_waiver() {
    let mut p = febrile_adult(37.1);
    temp(&mut p, 38.6, 30.0);
    given(&mut p, Drug::Ibuprofen, 10.0, Some(400.0));
    sbp(&mut p, 85.0, 1.0);
    let a = at_now(&p);
    assert!(matches!(&a.crs.fever_gate, FeverGate::Waived(m) if m.drug == Drug::Ibuprofen));
    assert_eq!(a.crs.grade, Some(2));
}

// ---------------------------------------------------------------- S4, S5

#[test]
fn an_unresponsive_patient_with_ice_not_performed_is_not_graded_4_but_not_assessable() {
    let mut p = adult();
    p.neuro_scores.push(Fact::new(
        NeuroScore::NotAssessable,
        ago(1.0),
        "Observation/ice",
    ));
    loc(&mut p, Consciousness::Unarousable, 1.0);
    let a = at_now(&p);
    assert_eq!(a.icans.grade, None);
    assert_eq!(a.icans.state, IcansState::NotAssessable);
    assert!(!a.icans.sedation.is_empty());
    assert!(!a.flags.contains(&Flag::SteroidsIndicated));
    assert!(!texts(&a).iter().any(|t| t.contains("1000 mg/day")));
}

#[test]
fn a_propofol_infusion_leaves_a_resolved_seizure_as_icans_3_lower_bound() {
    let mut p = adult();
    ice(&mut p, 10, 1.0);
    loc(&mut p, Consciousness::Unarousable, 1.0);
    p.sedatives.push(DrugExposure {
        drug: Drug::Propofol,
        start: ago(5.0),
        end: None,
        source: Source("MedicationAdministration/propofol".into()),
    });
    p.seizures
        .push(Fact::new(Seizure::Resolved, ago(3.0), "Observation/sz"));
    let a = at_now(&p);
    assert_eq!(a.icans.grade, Some(3));
    assert!(a.icans.lower_bound);
    assert_eq!(a.icans.consciousness, None);
    assert_eq!(a.icans.encephalopathy, None);
    assert!(
        a.icans
            .sedation
            .iter()
            .any(|e| e.source.0 == "MedicationAdministration/propofol")
    );
}

#[test]
fn a_stopped_sedative_infusion_does_not_block_grading() {
    let mut p = adult();
    ice(&mut p, 5, 1.0);
    p.sedatives.push(DrugExposure {
        drug: Drug::Midazolam,
        start: ago(10.0),
        end: Some(ago(4.0)),
        source: Source("MedicationAdministration/mdz".into()),
    });
    let a = at_now(&p);
    assert_eq!(a.icans.grade, Some(2));
    assert!(!a.icans.lower_bound);
}

#[test]
fn invasive_ventilation_makes_ice_not_assessable_but_consciousness_still_grades() {
    let mut p = adult();
    ice(&mut p, 3, 1.0);
    loc(&mut p, Consciousness::AwakensToVoice, 1.0);
    p.ventilation.push(Ventilation {
        mode: VentilationMode::Mechanical,
        start: ago(5.0),
        end: None,
        airway_protection_only: false,
        source: Source("Procedure/vent".into()),
    });
    let a = at_now(&p);
    assert_eq!(a.icans.encephalopathy, None);
    assert_eq!(a.icans.consciousness, Some(2));
    assert_eq!(a.icans.grade, Some(2));
    assert!(a.icans.lower_bound);
}

#[test]
fn a_valid_ice_after_one_recorded_as_not_performed_is_graded() {
    let mut p = adult();
    p.neuro_scores.push(Fact::new(
        NeuroScore::NotAssessable,
        ago(10.0),
        "Observation/ice-nd",
    ));
    ice(&mut p, 8, 1.0);
    let a = at_now(&p);
    assert_eq!(a.icans.grade, Some(1));
    assert!(a.icans.sedation.is_empty());
}

#[test]
fn unable_to_perform_capd_or_ice_because_unarousable_grades_4() {
    for capd in [true, false] {
        let mut p = adult();
        p.age_years = Some(if capd { 6.0 } else { 40.0 });
        p.neuro_scores.push(Fact::new(
            NeuroScore::UnableUnarousable { capd },
            ago(1.0),
            "Observation/capd",
        ));
        let a = at_now(&p);
        assert_eq!(a.icans.grade, Some(4), "capd {capd}");
        assert_eq!(a.icans.state, IcansState::Graded);
    }
}

// ---------------------------------------------------------------- S6, S7, S8

#[test]
fn without_a_weight_a_1200_mg_tocilizumab_order_exceeds_the_800_mg_cap() {
    let mut p = adult();
    p.weights.clear();
    let c = check(&toci_order(1200.0), &p);
    assert_eq!(c.issues, vec![DoseIssue::ExceedsMax]);
    assert_eq!(c.max_allowed_mg, Some(800.0));
    assert_eq!(c.suggest_dose_mg, None, "no safe dose without a weight");
}

#[test]
fn twelve_mg_per_kg_is_computed_exactly_so_the_exact_order_passes_under_30_kg() {
    for (kg, mg) in [
        (29.9, 358.8),
        (9.7, 116.4),
        (14.7, 176.4),
        (17.2, 206.4),
        (19.9, 238.8),
        (24.9, 298.8),
        (28.4, 340.8),
    ] {
        assert_eq!(tocilizumab_max_dose_mg(kg), mg, "{kg} kg");
        let c = check(&toci_order(mg), &with_weight(kg));
        assert_eq!(c.issues, vec![], "{kg} kg, {mg} mg");
        let c = check(&toci_order(mg + 0.1), &with_weight(kg));
        assert_eq!(
            c.issues,
            vec![DoseIssue::ExceedsMax],
            "{kg} kg, {mg} + 0.1 mg"
        );
    }
}

#[test]
fn at_29_9_kg_358_8_mg_passes_and_at_30_kg_it_exceeds_240_mg() {
    assert!(
        check(&toci_order(358.8), &with_weight(29.9))
            .issues
            .is_empty()
    );
    let c = check(&toci_order(358.8), &with_weight(30.0));
    assert_eq!(c.max_allowed_mg, Some(240.0));
    assert_eq!(c.issues, vec![DoseIssue::ExceedsMax]);
}

#[test]
fn a_560_mg_order_for_a_154_32_lb_patient_is_within_8_mg_per_kg() {
    let kg = 154.32 * 0.453_592_37;
    assert_eq!(tocilizumab_max_dose_mg(kg), 560.0);
    assert!(
        check(&toci_order(560.0), &with_weight(kg))
            .issues
            .is_empty()
    );
}

#[test]
fn an_8_mg_per_kg_order_at_29_9_kg_is_239_2_mg() {
    let mut o = toci_order(0.0);
    o.amount = DoseAmount::MgPerKg(8.0);
    let c = check(&o, &with_weight(29.9));
    assert_eq!(c.ordered_mg, Some(239.2));
    assert!(c.issues.is_empty());
}

#[test]
fn a_dose_7h59m_after_the_last_is_too_soon_says_when_and_suggests_no_dose() {
    let mut p = with_weight(70.0);
    given(&mut p, Drug::Tocilizumab, 7.0 + 59.0 / 60.0, Some(560.0));
    let c = check(&toci_order(900.0), &p);
    assert!(c.issues.contains(&DoseIssue::IntervalTooShort));
    assert!(c.issues.contains(&DoseIssue::ExceedsMax));
    assert_eq!(c.suggest_dose_mg, None);
    assert_eq!(c.next_dose_allowed_at, Some(NOW.plus_hours(1.0 / 60.0)));
    assert!(!c.no_further_dose);
    let mut p = with_weight(70.0);
    given(&mut p, Drug::Tocilizumab, 8.0, Some(560.0));
    let c = check(&toci_order(560.0), &p);
    assert!(c.issues.is_empty());
    assert_eq!(c.next_dose_allowed_at, None);
}

#[test]
fn a_fifth_dose_of_900_mg_gets_no_dose_suggestion_and_no_further_dose() {
    let mut p = with_weight(70.0);
    for h in [10.0, 30.0, 50.0, 70.0] {
        given(&mut p, Drug::Tocilizumab, h, Some(560.0));
    }
    let c = check(&toci_order(900.0), &p);
    assert_eq!(
        c.issues,
        vec![DoseIssue::ExceedsMax, DoseIssue::MaxTotalReached]
    );
    assert_eq!(c.suggest_dose_mg, None);
    assert!(c.no_further_dose);
    assert_eq!(c.next_dose_allowed_at, None);
}

#[test]
fn after_three_doses_in_24_h_the_next_is_allowed_when_the_oldest_is_24_h_old() {
    let mut p = with_weight(70.0);
    for h in [8.0, 16.0, 23.5] {
        given(&mut p, Drug::Tocilizumab, h, Some(560.0));
    }
    let c = check(&toci_order(560.0), &p);
    assert!(c.no_further_dose);
    assert_eq!(c.next_dose_allowed_at, Some(NOW.plus_hours(0.5)));
}

#[test]
fn an_order_above_the_maximum_with_no_other_issue_gets_the_rounded_maximum_as_suggestion() {
    let c = check(&toci_order(400.0), &with_weight(29.9));
    assert_eq!(c.issues, vec![DoseIssue::ExceedsMax]);
    assert_eq!(c.suggest_dose_mg, Some(358.8));
}

#[test]
fn an_unreadable_dose_is_an_issue_with_its_reason() {
    let mut o = toci_order(0.0);
    o.amount = DoseAmount::Unreadable("unit 'pill' is not a mass".into());
    let c = check(&o, &with_weight(70.0));
    assert!(c.issues.contains(&DoseIssue::DoseUnreadable));
    assert_eq!(
        c.unreadable_reason.as_deref(),
        Some("unit 'pill' is not a mass")
    );
    assert_eq!(DoseIssue::DoseUnreadable.key(), "dose-unreadable");
    assert_eq!(DoseIssue::WeightUnavailable.key(), "weight-unavailable");
}

#[test]
fn siltuximab_without_a_weight_is_weight_unavailable() {
    let mut p = adult();
    p.weights.clear();
    let mut o = toci_order(770.0);
    o.drug = Drug::Siltuximab;
    assert_eq!(check(&o, &p).issues, vec![DoseIssue::WeightUnavailable]);
}

// ---------------------------------------------------------------- S9

fn child(age: f64, kg: f64) -> PatientFacts {
    let mut p = with_weight(kg);
    p.age_years = Some(age);
    p
}

fn steroid_passes(s: &SteroidSuggestion, p: &PatientFacts) -> bool {
    let order = DoseOrder {
        drug: s.drug,
        amount: DoseAmount::Mg(s.dose_mg),
        per_day: Some(s.per_day),
        route: Some(s.route.into()),
        source: Source("MedicationRequest/suggested".into()),
    };
    check(&order, p).issues.is_empty()
}

#[test]
fn a_16_kg_child_with_icans_2_is_suggested_8_mg_dexamethasone_which_passes_the_dose_check() {
    let p = child(5.0, 16.0);
    let s = steroid_suggestion(&p, Some(2), NOW, &policy()).expect("a suggestion");
    assert_eq!(s.drug, Drug::Dexamethasone);
    assert_eq!(s.dose_mg, 8.0);
    assert_eq!((s.per_day, s.interval_hours, s.route), (4.0, 6.0, "IV"));
    assert!(s.verify_pediatric);
    assert!(steroid_passes(&s, &p));
}

#[test]
fn an_adult_with_icans_2_is_suggested_dexamethasone_10_mg_iv_q6h_which_passes() {
    let p = with_weight(70.0);
    let s = steroid_suggestion(&p, Some(2), NOW, &policy()).expect("a suggestion");
    assert_eq!((s.drug, s.dose_mg), (Drug::Dexamethasone, 10.0));
    assert_eq!(s.text, "dexamethasone 10 mg IV q6h");
    assert!(!s.verify_pediatric);
    assert!(steroid_passes(&s, &p));
}

#[test]
fn icans_4_is_suggested_methylprednisolone_not_dexamethasone_for_adults_and_children() {
    let p = with_weight(70.0);
    let s = steroid_suggestion(&p, Some(4), NOW, &policy()).expect("adult");
    assert_eq!(
        (s.drug, s.dose_mg, s.per_day),
        (Drug::Methylprednisolone, 1000.0, 1.0)
    );
    assert!(steroid_passes(&s, &p));
    let p = child(5.0, 16.0);
    let s = steroid_suggestion(&p, Some(4), NOW, &policy()).expect("child");
    assert_eq!((s.drug, s.dose_mg), (Drug::Methylprednisolone, 480.0));
    assert!(s.verify_pediatric);
    assert!(steroid_passes(&s, &p));
}

#[test]
fn a_small_13_year_old_gets_the_per_kg_dexamethasone_dose_that_passes() {
    let p = child(13.0, 18.0);
    let s = steroid_suggestion(&p, Some(3), NOW, &policy()).expect("a suggestion");
    assert_eq!(s.dose_mg, 9.0);
    assert!(steroid_passes(&s, &p));
}

#[test]
fn a_child_with_no_weight_gets_no_steroid_suggestion() {
    let mut p = child(5.0, 16.0);
    p.weights.clear();
    assert_eq!(steroid_suggestion(&p, Some(2), NOW, &policy()), None);
}

#[test]
fn the_tocilizumab_suggestion_is_the_weight_based_dose_and_passes_the_dose_check() {
    let p = with_weight(70.0);
    let d = tocilizumab_suggestion(&p, NOW, &policy()).expect("a dose");
    assert_eq!(
        d,
        TocilizumabDose {
            mg: 560.0,
            mg_per_kg: 8.0,
            dose_number: 1,
            max_doses: 4
        }
    );
    assert!(check(&toci_order(d.mg), &p).issues.is_empty());
    let p = with_weight(29.9);
    let d = tocilizumab_suggestion(&p, NOW, &policy()).expect("a dose");
    assert_eq!((d.mg, d.mg_per_kg), (358.8, 12.0));
    assert!(check(&toci_order(d.mg), &p).issues.is_empty());
}

#[test]
fn no_tocilizumab_suggestion_without_a_weight_or_within_8_h_of_the_last_dose() {
    let mut p = adult();
    p.weights.clear();
    assert_eq!(tocilizumab_suggestion(&p, NOW, &policy()), None);
    let mut p = with_weight(70.0);
    given(&mut p, Drug::Tocilizumab, 7.0, Some(560.0));
    assert_eq!(tocilizumab_suggestion(&p, NOW, &policy()), None);
    let mut p = with_weight(70.0);
    given(&mut p, Drug::Tocilizumab, 9.0, Some(560.0));
    assert_eq!(
        tocilizumab_suggestion(&p, NOW, &policy()).map(|d| d.dose_number),
        Some(2)
    );
}

// ---------------------------------------------------------------- S10

fn lab(p: &mut PatientFacts, kind: LabKind, value: f64, uln: Option<f64>, h: f64) {
    let n = p.labs.len();
    p.labs.push(Fact::new(
        LabValue { kind, value, uln },
        ago(h),
        format!("Observation/lab{n}"),
    ));
}

#[test]
fn ferritin_10001_with_unranged_ast_and_creatinine_is_possible_hlh_and_10000_is_not() {
    for (ferritin, possible) in [(10_000.0, false), (10_001.0, true)] {
        let mut p = febrile_adult(38.5);
        lab(&mut p, LabKind::Ferritin, ferritin, None, 6.0);
        lab(&mut p, LabKind::Ast, 360.0, None, 6.0);
        lab(&mut p, LabKind::Creatinine, 3.6, None, 6.0);
        let a = at_now(&p);
        assert_eq!(a.hlh.liver, Criterion::NotAssessed);
        assert_eq!(a.hlh.renal, Criterion::NotAssessed);
        assert_eq!(a.hlh.pulmonary, Criterion::NotAssessed);
        assert_eq!(a.flags.contains(&Flag::HlhPossible), possible, "{ferritin}");
        assert!(!a.flags.contains(&Flag::HlhSuspected));
        assert_eq!(a.hlh.not_assessed().len(), 4);
    }
}

#[test]
fn all_four_criteria_recorded_as_not_met_is_not_possible_hlh() {
    let mut p = febrile_adult(38.5);
    lab(&mut p, LabKind::Ferritin, 12_000.0, None, 6.0);
    lab(&mut p, LabKind::Ast, 30.0, Some(40.0), 6.0);
    lab(&mut p, LabKind::Alt, 30.0, Some(40.0), 6.0);
    lab(&mut p, LabKind::Bilirubin, 0.8, Some(1.2), 6.0);
    lab(&mut p, LabKind::Creatinine, 0.9, Some(1.2), 6.0);
    for f in [
        ClinicalFinding::PulmonaryEdemaGrade3,
        ClinicalFinding::Hemophagocytosis,
    ] {
        p.findings_absent
            .push(Fact::new(f, ago(3.0), "Observation/no"));
    }
    let a = at_now(&p);
    assert_eq!(a.hlh.liver, Criterion::NotMet);
    assert_eq!(a.hlh.renal, Criterion::NotMet);
    assert_eq!(a.hlh.pulmonary, Criterion::NotMet);
    assert_eq!(a.hlh.hemophagocytosis, Criterion::NotMet);
    assert!(!a.flags.contains(&Flag::HlhPossible));
    assert!(a.hlh.not_assessed().is_empty());
}

#[test]
fn the_creatinine_baseline_is_the_lowest_value_in_the_30_days_before_the_infusion() {
    // Infusion 72 h ago. 0.5 mg/dL 40 days before: too old. 0.9 and 1.2 within 30 days.
    let mut p = febrile_adult(38.5);
    lab(&mut p, LabKind::Creatinine, 0.5, None, 72.0 + 40.0 * 24.0);
    lab(&mut p, LabKind::Creatinine, 0.9, None, 72.0 + 10.0 * 24.0);
    lab(&mut p, LabKind::Creatinine, 1.2, None, 80.0);
    lab(&mut p, LabKind::Creatinine, 2.8, None, 6.0);
    // 2.8 / 0.9 = 3.1 > 3 (the latest pre-infusion value, 1.2, would give 2.3).
    assert_eq!(at_now(&p).hlh.renal, Criterion::Met);
}

#[test]
fn a_hemophagocytosis_finding_recorded_absent_after_present_is_not_met() {
    let mut p = adult();
    p.findings.push(Fact::new(
        ClinicalFinding::Hemophagocytosis,
        ago(40.0),
        "Observation/bm1",
    ));
    p.findings_absent.push(Fact::new(
        ClinicalFinding::Hemophagocytosis,
        ago(10.0),
        "Observation/bm2",
    ));
    assert_eq!(at_now(&p).hlh.hemophagocytosis, Criterion::NotMet);
}

// ---------------------------------------------------------------- S11

fn pressor_stopped(minutes_ago: f64) -> PatientFacts {
    let mut p = febrile_adult(38.5);
    p.vasoactive.push(DrugExposure {
        drug: Drug::Norepinephrine,
        start: ago(minutes_ago / 60.0 + 8.0),
        end: Some(ago(minutes_ago / 60.0)),
        source: Source("MedicationAdministration/ne".into()),
    });
    p
}

#[test]
fn a_pressor_stopped_1h59m_ago_is_current_and_2h01m_ago_is_not() {
    assert_eq!(at_now(&pressor_stopped(119.0)).crs.grade, Some(3));
    assert_eq!(at_now(&pressor_stopped(121.0)).crs.grade, Some(1));
}

#[test]
fn norepinephrine_stopped_20_h_ago_on_room_air_is_crs_1_now_with_a_worst_of_3() {
    let mut p = pressor_stopped(20.0 * 60.0);
    temp(&mut p, 38.9, 21.0);
    let a = at_now(&p);
    assert_eq!(a.crs.grade, Some(1));
    assert!(!a.flags.contains(&Flag::SteroidsIndicated));
    assert_eq!(a.crs_worst_24h, Some(3));
}

#[test]
fn the_pressor_current_window_is_a_policy() {
    let mut policy = policy();
    policy.pressor_current_hours = 4.0;
    let a = assess(&pressor_stopped(180.0), &[], NOW, &policy);
    assert_eq!(a.crs.grade, Some(3));
}

#[test]
fn a_flow_59_min_from_the_device_pairs_with_it_and_61_min_does_not() {
    // A later flow: paired with the face mask (3), or standing alone at 4 L/min (2).
    for (minutes, grade) in [(59.0, 3), (61.0, 2)] {
        let mut p = febrile_adult(38.5);
        p.oxygen_devices.clear();
        device(&mut p, OxygenDevice::FaceMask, 1.0 + minutes / 60.0);
        flow(&mut p, 4.0, 1.0);
        assert_eq!(
            at_now(&p).crs.grade,
            Some(grade),
            "flow {minutes} min after the mask"
        );
    }
    // An earlier flow: paired with the cannula (4 L/min: 2), or the HFNC alone (3).
    for (minutes, grade) in [(59.0, 2), (61.0, 3)] {
        let mut p = febrile_adult(38.5);
        p.oxygen_devices.clear();
        device(&mut p, OxygenDevice::HighFlowNasalCannula, 1.0);
        flow(&mut p, 4.0, 1.0 + minutes / 60.0);
        assert_eq!(
            at_now(&p).crs.grade,
            Some(grade),
            "flow {minutes} min before the HFNC"
        );
    }
}

#[test]
fn a_high_flow_cannula_charted_1_h_ago_is_not_paired_with_a_flow_from_20_h_earlier() {
    let mut p = febrile_adult(38.5);
    p.oxygen_devices.clear();
    flow(&mut p, 4.0, 21.0);
    device(&mut p, OxygenDevice::HighFlowNasalCannula, 1.0);
    let a = at_now(&p);
    assert_eq!(a.crs.hypoxia.grade, Some(3));
}

#[test]
fn the_worst_icans_over_the_window_is_reported_beside_the_current_grade() {
    let mut p = adult();
    ice(&mut p, 2, 12.0);
    ice(&mut p, 9, 1.0);
    let a = at_now(&p);
    assert_eq!(a.icans.grade, Some(1));
    assert_eq!(a.icans_worst_24h, Some(3));
}

// ---------------------------------------------------------------- S12

#[test]
fn a_child_of_4_years_11_months_uses_70_plus_2_times_4() {
    let age = 4.0 + 11.0 / 12.0;
    assert_eq!(sbp_threshold(age, &policy()), 78.0);
    for (value, grade) in [(79.0, 1), (78.0, 1), (77.0, 2)] {
        let mut p = febrile_adult(38.5);
        p.age_years = Some(age);
        p.systolic.clear();
        sbp(&mut p, value, 1.0);
        assert_eq!(at_now(&p).crs.grade, Some(grade), "SBP {value}");
    }
}

#[test]
fn a_stale_weight_sent_in_pounds_is_shown_with_one_decimal() {
    let mut p = adult();
    p.weights = vec![Fact::new(
        Kg::new(154.32 * 0.453_592_37).expect("valid"),
        ago(24.0 * 20.0),
        "Observation/w",
    )];
    let c = check(&toci_order(560.0), &p);
    assert!(
        c.notes
            .iter()
            .any(|n| n.starts_with("weight 70 kg is 20 days old")),
        "{:?}",
        c.notes
    );
}
