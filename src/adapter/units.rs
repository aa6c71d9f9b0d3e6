//! UCUM unit conversion into the engine's canonical units.
//!
//! Why an explicit table rather than a UCUM library: `octofhir-ucum` (0.9.2, the
//! candidate the issue names) was considered. The adapter needs a *closed* list per
//! quantity, because FHIR-INPUTS.md says an unexpected unit makes the value unusable: a
//! general UCUM engine would happily convert `K` (kelvin) or `mmol/L` for whatever
//! is commensurable, and the adapter would still have to whitelist what it accepts. The
//! closed list below is about twenty pairs, is auditable by a clinician, and is computed
//! in exact decimal arithmetic (`rust_decimal`) from the decimal text fhirbolt keeps, so
//! 100.4 `[degF]` is exactly 38.0 `Cel` (a fever), not 37.99999.

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
        (Measure::Flow, "L/min" | "l/min") => SAME,
        (Measure::Flow, "mL/min" | "ml/min") => over("1000"),
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
        (Measure::Lab(L::Creatinine), "umol/L") => over("88.42"),
        (Measure::Lab(L::Platelets | L::Anc | L::Wbc), "10*9/L" | "10*3/uL" | "/nL") => SAME,
        (Measure::Lab(L::Hemoglobin), "g/dL") => SAME,
        (Measure::Lab(L::Hemoglobin), "g/L") => over("10"),
        (Measure::Lab(L::Lactate), "mmol/L") => SAME,
        (Measure::Lab(L::Lactate), "mg/dL") => over("9.008"),
        _ => return None,
    })
}

/// Converts a FHIR decimal (its exact text) in `unit` to the canonical unit of
/// `measure`, rounded to 6 decimals. `Err` holds the reason in words.
pub(crate) fn convert(value: &str, unit: Option<&str>, measure: Measure) -> Result<f64, String> {
    let v = Decimal::from_str(value.trim())
        .or_else(|_| Decimal::from_scientific(value.trim()))
        .map_err(|_| format!("unreadable {} value '{value}'", measure.name()))?;
    let unit = match unit.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => u,
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
    out.round_dp(6)
        .to_f64()
        .ok_or_else(|| format!("{} value '{value}' out of range", measure.name()))
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
}
