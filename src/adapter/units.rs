//! UCUM unit conversion into the engine's canonical units.
//!
//! Why an explicit table rather than a UCUM library (issue 9, evaluated again): the
//! adapter needs a *closed* list per quantity, because FHIR-INPUTS.md says an unexpected
//! unit makes the value unusable: a general UCUM engine would happily convert `K`
//! (kelvin) or `mmol/L` for whatever is commensurable, and the adapter would still have
//! to whitelist what it accepts, per quantity (the dimension check). The Rust UCUM
//! crates (`octofhir-ucum`, `ucum`) are not in this build's vetted package lists, are
//! young single-maintainer projects, would not read the non-UCUM spellings US EHRs send
//! (`K/uL`, `mmHg`, `degF`) anyway, and need the molar mass of creatinine given by hand
//! for `umol/L` → `mg/dL`, which is the one conversion they would add. The closed list
//! below is about thirty pairs, is auditable by a clinician, and is computed in exact
//! decimal arithmetic (`rust_decimal`) from the decimal text fhirbolt keeps, so 100.4
//! `[degF]` is exactly 38.0 `Cel` (a fever), not 37.99999.
//!
//! Spellings (FHIR-INPUTS.md "Real-world encodings", "Units"): a UCUM unit written with
//! a lowercase litre (`g/dl`, `l/min`, `mmol/l`, `10*3/ul`) is the same unit as with `L`
//! (UCUM has both `l` and `L` for the litre); common non-UCUM spellings are read
//! through [`ALIASES`], and the card notes "unit 'K/uL' read as 10*3/uL". Anything
//! else stays refused.

use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::domain::LabKind;

/// What a quantity measures, which decides its canonical unit and accepted units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Measure {
    /// Body temperature, canonical `Cel`.
    Temperature,
    /// Blood pressure, canonical `mm[Hg]`.
    Pressure,
    /// Body weight, canonical `kg`.
    Weight,
    /// Oxygen flow, canonical `L/min`.
    Flow,
    /// FiO2, canonical fraction 0-1.
    Fio2,
    /// A dose, canonical `mg`.
    DoseMass,
    /// A laboratory value, canonical `LabKind::unit()`.
    Lab(LabKind),
}

impl Measure {
    /// Words for messages.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Temperature => "temperature",
            Measure::Pressure => "blood pressure",
            Measure::Weight => "body weight",
            Measure::Flow => "oxygen flow",
            Measure::Fio2 => "FiO2",
            Measure::DoseMass => "dose",
            Measure::Lab(k) => k.key(),
        }
    }
}

/// `canonical = (value + add) * mul / div`.
struct Linear {
    add: &'static str,
    mul: &'static str,
    div: &'static str,
}

const SAME: Linear = Linear {
    add: "0",
    mul: "1",
    div: "1",
};

const fn times(mul: &'static str) -> Linear {
    Linear {
        add: "0",
        mul,
        div: "1",
    }
}

const fn over(div: &'static str) -> Linear {
    Linear {
        add: "0",
        mul: "1",
        div,
    }
}

/// The accepted UCUM codes of each measure and how to reach its canonical unit.
fn rule(measure: Measure, unit: &str) -> Option<Linear> {
    use LabKind as L;
    Some(match (measure, unit) {
        (Measure::Temperature, "Cel") => SAME,
        (Measure::Temperature, "[degF]") => Linear {
            add: "-32",
            mul: "5",
            div: "9",
        },
        (Measure::Pressure, "mm[Hg]") => SAME,
        (Measure::Weight, "kg") => SAME,
        (Measure::Weight, "g") => over("1000"),
        (Measure::Weight, "[lb_av]") => times("0.45359237"),
        (Measure::Flow, "L/min") => SAME,
        (Measure::Flow, "mL/min") => over("1000"),
        (Measure::Fio2, "%") => over("100"),
        (Measure::Fio2, "1") => SAME,
        (Measure::DoseMass, "mg") => SAME,
        (Measure::DoseMass, "g") => times("1000"),
        (Measure::Lab(L::Ferritin | L::Procalcitonin), "ng/mL" | "ug/L") => SAME,
        (Measure::Lab(L::Crp), "mg/L") => SAME,
        (Measure::Lab(L::Crp), "mg/dL") => times("10"),
        (Measure::Lab(L::Il6), "pg/mL" | "ng/L") => SAME,
        (Measure::Lab(L::Fibrinogen), "g/L") => SAME,
        (Measure::Lab(L::Fibrinogen), "mg/dL") => over("100"),
        (Measure::Lab(L::Triglycerides), "mmol/L") => SAME,
        (Measure::Lab(L::Triglycerides), "mg/dL") => over("88.57"),
        (Measure::Lab(L::Ast | L::Alt | L::Ldh), "U/L" | "[IU]/L") => SAME,
        (Measure::Lab(L::Bilirubin), "mg/dL") => SAME,
        (Measure::Lab(L::Bilirubin), "umol/L") => over("17.104"),
        (Measure::Lab(L::Creatinine), "mg/dL") => SAME,
        // Moles/volume at the molar mass of creatinine, 113.12 g/mol (FHIR-INPUTS.md
        // "Units"): 1 mmol/L = 113.12 mg/L = 11.312 mg/dL.
        (Measure::Lab(L::Creatinine), "mmol/L") => times("11.312"),
        (Measure::Lab(L::Creatinine), "umol/L") => times("0.011312"),
        (Measure::Lab(L::Platelets | L::Anc | L::Wbc), "10*9/L" | "10*3/uL" | "/nL") => SAME,
        (Measure::Lab(L::Hemoglobin), "g/dL") => SAME,
        (Measure::Lab(L::Hemoglobin), "g/L") => over("10"),
        (Measure::Lab(L::Lactate), "mmol/L") => SAME,
        (Measure::Lab(L::Lactate), "mg/dL") => over("9.008"),
        _ => return None,
    })
}

/// Common non-UCUM spellings from US EHRs and the UCUM unit each is read as
/// (FHIR-INPUTS.md "Real-world encodings", "Units"). Matched whole, ignoring ASCII case
/// and surrounding space. A spelling here is reported on the card when used.
pub(crate) const ALIASES: [(&str, &str); 17] = [
    ("K/uL", "10*3/uL"),
    ("K/µL", "10*3/uL"),
    ("x10E3/uL", "10*3/uL"),
    ("x10^3/uL", "10*3/uL"),
    ("10^3/uL", "10*3/uL"),
    ("x10E9/L", "10*9/L"),
    ("10^9/L", "10*9/L"),
    ("lb", "[lb_av]"),
    ("lbs", "[lb_av]"),
    ("degF", "[degF]"),
    ("deg F", "[degF]"),
    ("°F", "[degF]"),
    ("degC", "Cel"),
    ("deg C", "Cel"),
    ("°C", "Cel"),
    ("mmHg", "mm[Hg]"),
    ("mm Hg", "mm[Hg]"),
];

/// A unit as sent and the UCUM spelling the conversion table is keyed by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spelling {
    /// The UCUM unit.
    pub ucum: String,
    /// `Some(alias)` when the unit was read through [`ALIASES`].
    pub alias: Option<&'static str>,
}

/// The UCUM spelling of `unit`: an alias from [`ALIASES`], or `unit` with a lowercase
/// litre atom (`l`, `dl`, `ml`, `ul`, `nl`, `cl`) written as UCUM's `L` (`g/dl` → `g/dL`).
pub(crate) fn spelling(unit: &str) -> Spelling {
    let unit = unit.trim();
    if let Some((alias, ucum)) = ALIASES
        .iter()
        // ASCII case only: the aliases' other characters (µ, °) have no case pair.
        .find(|(a, _)| a.eq_ignore_ascii_case(unit))
    {
        return Spelling {
            ucum: (*ucum).to_string(),
            alias: Some(alias),
        };
    }
    let ucum = unit
        .split('/')
        .map(|part| match part {
            "l" | "dl" | "ml" | "ul" | "nl" | "cl" => {
                let prefix = part.get(..part.len() - 1).unwrap_or("");
                format!("{prefix}L")
            }
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/");
    Spelling { ucum, alias: None }
}

/// Converts a FHIR decimal (its exact text) in `unit` to the canonical unit of
/// `measure`, rounded to 6 decimals. `Err` holds the reason in words.
pub(crate) fn convert(value: &str, unit: Option<&str>, measure: Measure) -> Result<f64, String> {
    convert_read(value, unit, measure).map(|(v, _)| v)
}

/// Converts as [`convert`] does, and gives the spelling the unit was read as (`None`
/// without a unit), so a caller need not spell it again.
pub(crate) fn convert_read(
    value: &str,
    unit: Option<&str>,
    measure: Measure,
) -> Result<(f64, Option<Spelling>), String> {
    let v = Decimal::from_str(value.trim())
        .or_else(|_| Decimal::from_scientific(value.trim()))
        .map_err(|_| format!("unreadable {} value '{value}'", measure.name()))?;
    let sent = unit.map(str::trim).filter(|u| !u.is_empty());
    let read = sent.map(spelling);
    let unit = match &read {
        Some(s) => s.ucum.as_str(),
        // A bare FiO2 at most 1 is a fraction (FHIR-INPUTS.md "% and a fraction").
        None if measure == Measure::Fio2 && v <= Decimal::ONE => "1",
        None => {
            return Err(format!(
                "no unit for {} {value}: value not used",
                measure.name()
            ));
        }
    };
    let Some(r) = rule(measure, unit) else {
        let unit = sent.unwrap_or(unit);
        return Err(format!(
            "unknown unit '{unit}' for {} {value}: value not used",
            measure.name()
        ));
    };
    let d = |s: &str| Decimal::from_str(s).unwrap_or(Decimal::ONE);
    let out = (v + d(r.add))
        .checked_mul(d(r.mul))
        .and_then(|x| x.checked_div(d(r.div)))
        .ok_or_else(|| format!("{} value '{value}' out of range", measure.name()))?;
    let out = out
        .round_dp(6)
        .to_f64()
        .ok_or_else(|| format!("{} value '{value}' out of range", measure.name()))?;
    Ok((out, read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fahrenheit_100_4_is_exactly_38_celsius() {
        assert_eq!(
            convert("100.4", Some("[degF]"), Measure::Temperature),
            Ok(38.0)
        );
        assert!(convert("100.2", Some("[degF]"), Measure::Temperature).is_ok_and(|c| c < 38.0));
    }

    #[test]
    fn kelvin_and_missing_temperature_units_are_refused() {
        assert!(convert("311", Some("K"), Measure::Temperature).is_err());
        assert!(convert("38.5", None, Measure::Temperature).is_err());
    }

    #[test]
    fn pounds_grams_and_lab_units_convert() {
        assert_eq!(
            convert("220", Some("[lb_av]"), Measure::Weight),
            Ok(99.790321)
        );
        assert_eq!(convert("70000", Some("g"), Measure::Weight), Ok(70.0));
        assert_eq!(
            convert("5", Some("mg/dL"), Measure::Lab(LabKind::Crp)),
            Ok(50.0)
        );
        assert_eq!(
            convert("250", Some("mg/dL"), Measure::Lab(LabKind::Fibrinogen)),
            Ok(2.5)
        );
        assert_eq!(convert("40", Some("%"), Measure::Fio2), Ok(0.4));
        assert_eq!(convert("0.4", None, Measure::Fio2), Ok(0.4));
    }

    #[test]
    fn a_lowercase_litre_is_the_same_ucum_unit() {
        let hb = Measure::Lab(LabKind::Hemoglobin);
        assert_eq!(convert("13.2", Some("g/dl"), hb), Ok(13.2));
        assert_eq!(convert("13.2", Some("g/dL"), hb), Ok(13.2));
        assert_eq!(convert("2", Some("l/min"), Measure::Flow), Ok(2.0));
        assert_eq!(convert("500", Some("ml/min"), Measure::Flow), Ok(0.5));
        assert_eq!(
            convert("150", Some("10*3/ul"), Measure::Lab(LabKind::Platelets)),
            Ok(150.0)
        );
        assert_eq!(spelling("g/dl").alias, None);
    }

    #[test]
    fn creatinine_in_moles_converts_at_113_12_g_per_mol() {
        let cr = Measure::Lab(LabKind::Creatinine);
        // 0.1 mmol/L = 11.312 mg/L = 1.1312 mg/dL; 88.4 umol/L = 0.99998... mg/dL.
        assert_eq!(convert("0.1", Some("mmol/L"), cr), Ok(1.1312));
        assert_eq!(convert("0.1", Some("mmol/l"), cr), Ok(1.1312));
        assert_eq!(convert("100", Some("umol/L"), cr), Ok(1.1312));
        assert_eq!(convert("88.4", Some("umol/L"), cr), Ok(0.999981));
    }

    #[test]
    fn us_ehr_spellings_are_read_through_the_alias_table() {
        let plt = Measure::Lab(LabKind::Platelets);
        assert_eq!(convert("42", Some("K/uL"), plt), Ok(42.0));
        assert_eq!(convert("42", Some("x10E3/uL"), plt), Ok(42.0));
        assert_eq!(
            spelling("K/uL"),
            Spelling {
                ucum: "10*3/uL".into(),
                alias: Some("K/uL")
            }
        );
        assert_eq!(convert("220", Some("lbs"), Measure::Weight), Ok(99.790321));
        assert_eq!(convert("220", Some("lb"), Measure::Weight), Ok(99.790321));
        for f in ["degF", "deg F", "°F", "DegF"] {
            assert_eq!(
                convert("100.4", Some(f), Measure::Temperature),
                Ok(38.0),
                "{f}"
            );
        }
        for c in ["degC", "deg C", "°C", "DegC"] {
            assert_eq!(
                convert("38.3", Some(c), Measure::Temperature),
                Ok(38.3),
                "{c}"
            );
        }
        assert_eq!(convert("88", Some("mmHg"), Measure::Pressure), Ok(88.0));
    }

    #[test]
    fn a_unit_outside_ucum_and_the_alias_table_stays_refused() {
        assert!(convert("42", Some("k/ul"), Measure::Lab(LabKind::Crp)).is_err());
        assert!(convert("38.3", Some("C"), Measure::Temperature).is_err());
        assert!(convert("38.3", Some("F"), Measure::Temperature).is_err());
        assert!(convert("42", Some("thousand"), Measure::Lab(LabKind::Platelets)).is_err());
        // The dimension check per quantity: a platelet unit is not a temperature.
        assert!(convert("42", Some("K/uL"), Measure::Temperature).is_err());
        assert!(convert("1", Some("mmol/L"), Measure::Lab(LabKind::Crp)).is_err());
    }
}
