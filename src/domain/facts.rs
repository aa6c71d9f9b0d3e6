//! The engine's inputs: clinical facts, each with the instant it refers to and the
//! resource it came from, so every grade can show its evidence.
//!
//! Range-checked values are newtypes built only through their constructors, which
//! refuse out-of-range data instead of clamping it (FHIR-INPUTS.md: "An out-of-range
//! value … is a data error the card reports; it is not clamped").

use std::fmt;

use super::time::Timestamp;

/// Where a fact came from: a FHIR reference such as `Observation/temp-1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source(pub String);

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value observed at an instant, with its provenance.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact<T> {
    /// The observed value.
    pub value: T,
    /// When it was true (the observation's effective time).
    pub at: Timestamp,
    /// The resource it was read from.
    pub source: Source,
}

impl<T> Fact<T> {
    /// A fact observed at `at`, read from `source`.
    pub fn new(value: T, at: Timestamp, source: impl Into<String>) -> Self {
        Fact {
            value,
            at,
            source: Source(source.into()),
        }
    }
}

/// A value that is out of its valid or plausible range.
#[derive(Clone, Debug, PartialEq)]
pub struct DataError {
    /// What was being read ("ICE score").
    pub what: &'static str,
    /// The refused value, as text.
    pub value: String,
    /// The accepted range, as text ("0-10").
    pub range: &'static str,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} is outside {}", self.what, self.value, self.range)
    }
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    what: &'static str,
    value: T,
    lo: T,
    hi: T,
    range: &'static str,
) -> Result<T, DataError> {
    if value >= lo && value <= hi {
        Ok(value)
    } else {
        Err(DataError {
            what,
            value: value.to_string(),
            range,
        })
    }
}

/// Body temperature in degrees Celsius, within a physiologically plausible range.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Celsius(f64);

impl Celsius {
    /// Accepts 25.0-45.0 °C; anything else (a 60 °C reading, a Fahrenheit value
    /// stored as Celsius) is a data error, never a fever.
    pub fn new(value: f64) -> Result<Self, DataError> {
        if !value.is_finite() {
            return Err(DataError {
                what: "temperature",
                value: value.to_string(),
                range: "25-45 Cel",
            });
        }
        in_range("temperature", value, 25.0, 45.0, "25-45 Cel").map(Celsius)
    }
    /// The value in °C.
    pub fn value(self) -> f64 {
        self.0
    }
}

/// Systolic blood pressure in mmHg, within a plausible range.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Systolic(f64);

impl Systolic {
    /// Accepts 20-300 mmHg.
    pub fn new(value: f64) -> Result<Self, DataError> {
        if !value.is_finite() {
            return Err(DataError {
                what: "systolic pressure",
                value: value.to_string(),
                range: "20-300 mm[Hg]",
            });
        }
        in_range("systolic pressure", value, 20.0, 300.0, "20-300 mm[Hg]").map(Systolic)
    }
    /// The value in mmHg.
    pub fn value(self) -> f64 {
        self.0
    }
}

/// Body weight in kilograms.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Kg(f64);

impl Kg {
    /// Accepts 0.3-400 kg.
    pub fn new(value: f64) -> Result<Self, DataError> {
        if !value.is_finite() {
            return Err(DataError {
                what: "body weight",
                value: value.to_string(),
                range: "0.3-400 kg",
            });
        }
        in_range("body weight", value, 0.3, 400.0, "0.3-400 kg").map(Kg)
    }
    /// The value in kg.
    pub fn value(self) -> f64 {
        self.0
    }
}

/// Oxygen flow in L/min.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct LitersPerMinute(f64);

impl LitersPerMinute {
    /// Accepts 0-80 L/min (the top of high-flow nasal cannula devices).
    pub fn new(value: f64) -> Result<Self, DataError> {
        if !value.is_finite() {
            return Err(DataError {
                what: "oxygen flow",
                value: value.to_string(),
                range: "0-80 L/min",
            });
        }
        in_range("oxygen flow", value, 0.0, 80.0, "0-80 L/min").map(LitersPerMinute)
    }
    /// The value in L/min.
    pub fn value(self) -> f64 {
        self.0
    }
}

/// The five ICE items (RULES.md A.2): orientation 0-4, naming 0-3, commands 0-1,
/// writing 0-1, attention 0-1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IceItems {
    /// Orientation to year, month, city, hospital (0-4).
    pub orientation: u8,
    /// Naming three objects (0-3).
    pub naming: u8,
    /// Following simple commands (0-1).
    pub commands: u8,
    /// Writing a standard sentence (0-1).
    pub writing: u8,
    /// Counting backwards from 100 by 10 (0-1).
    pub attention: u8,
}

/// An ICE score (0-10), from its total or from its items (RULES.md A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IceScore {
    total: u8,
    items: Option<IceItems>,
}

impl IceScore {
    /// An ICE total; values outside 0-10 are refused.
    pub fn from_total(total: i64) -> Result<Self, DataError> {
        let t = in_range("ICE score", total, 0, 10, "0-10")?;
        Ok(IceScore {
            total: t as u8,
            items: None,
        })
    }

    /// The ICE score as the sum of its items; "reject any component value above its
    /// maximum" (RULES.md A.2).
    pub fn from_items(
        orientation: i64,
        naming: i64,
        commands: i64,
        writing: i64,
        attention: i64,
    ) -> Result<Self, DataError> {
        let items = IceItems {
            orientation: in_range("ICE orientation", orientation, 0, 4, "0-4")? as u8,
            naming: in_range("ICE naming", naming, 0, 3, "0-3")? as u8,
            commands: in_range("ICE commands", commands, 0, 1, "0-1")? as u8,
            writing: in_range("ICE writing", writing, 0, 1, "0-1")? as u8,
            attention: in_range("ICE attention", attention, 0, 1, "0-1")? as u8,
        };
        let total =
            items.orientation + items.naming + items.commands + items.writing + items.attention;
        Ok(IceScore {
            total,
            items: Some(items),
        })
    }

    /// The total, 0-10.
    pub fn total(self) -> u8 {
        self.total
    }

    /// The items, when the score was given by items.
    pub fn items(self) -> Option<IceItems> {
        self.items
    }
}

/// A Cornell Assessment of Pediatric Delirium total (0-32), RULES.md A.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapdScore(u8);

impl CapdScore {
    /// A CAPD total; values outside 0-32 are refused.
    pub fn new(total: i64) -> Result<Self, DataError> {
        in_range("CAPD score", total, 0, 32, "0-32").map(|t| CapdScore(t as u8))
    }
    /// The total, 0-32.
    pub fn total(self) -> u8 {
        self.0
    }
}

/// The encephalopathy assessment (RULES.md A.2): ICE from age 12, CAPD below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeuroScore {
    /// An ICE score.
    Ice(IceScore),
    /// A CAPD score.
    Capd(CapdScore),
    /// The patient could not perform ICE (or, `capd: true`, CAPD) because unarousable:
    /// ICANS grade 4 (RULES.md §7 S5, [ASTCT] ICE G4 and the CAPD table). Encoded as
    /// `iec-toxicity#unable-unarousable` in the score Observation's value, never
    /// inferred from a `dataAbsentReason`.
    UnableUnarousable {
        /// Recorded on a CAPD Observation (else ICE).
        capd: bool,
    },
    /// The assessment was recorded as not done (`dataAbsentReason`, e.g. sedated or
    /// intubated): the domain is not assessable, never normal.
    NotAssessable,
}

/// Level of consciousness (RULES.md A.2, ICANS depressed-consciousness domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Consciousness {
    /// Fully alert.
    Alert,
    /// Drowsy, awakens spontaneously (grade 1).
    AwakensSpontaneously,
    /// Awakens to voice (grade 2).
    AwakensToVoice,
    /// Awakens only to tactile stimulus (grade 3).
    AwakensToTactile,
    /// Unarousable, needs vigorous or repetitive stimuli, stupor or coma (grade 4).
    Unarousable,
}

/// Seizure domain (RULES.md A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seizure {
    /// No seizure.
    None,
    /// A clinical seizure that resolved rapidly, or nonconvulsive EEG seizures that
    /// resolved with intervention (grade 3).
    Resolved,
    /// Prolonged (> 5 min) seizure, or repetitive clinical or electrical seizures
    /// without return to baseline (grade 4).
    ProlongedOrRepetitive,
}

/// Motor domain (RULES.md A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Motor {
    /// No focal motor finding.
    None,
    /// Deep focal motor weakness such as hemiparesis or paraparesis (grade 4).
    DeepFocalWeakness,
}

/// Raised intracranial pressure / cerebral edema domain (RULES.md A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CerebralEdema {
    /// None.
    None,
    /// Focal or local edema on neuroimaging (grade 3).
    Focal,
    /// Diffuse edema, posturing, CN VI palsy, papilledema or Cushing's triad (grade 4).
    Diffuse,
}

/// Oxygen delivery devices (RULES.md A.1 hypoxia table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OxygenDevice {
    /// No supplemental oxygen.
    RoomAir,
    /// Blow-by oxygen (grade 2).
    BlowBy,
    /// Nasal cannula; graded by flow.
    NasalCannula,
    /// Nasal cannula labelled high-flow; graded by flow.
    HighFlowNasalCannula,
    /// Any face mask (simple, partial- or rebreathing, aerosol): grade 3.
    FaceMask,
    /// Non-rebreather mask: grade 3.
    NonRebreather,
    /// Venturi mask: grade 3.
    VenturiMask,
    /// CPAP: grade 4.
    Cpap,
    /// BiPAP or non-invasive ventilation: grade 4.
    Bipap,
    /// Invasive mechanical ventilation: grade 4.
    MechanicalVentilation,
}

impl OxygenDevice {
    /// Parses an engine concept key (as used in `fhir-profiles/`).
    pub fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "room-air" => Self::RoomAir,
            "blow-by" => Self::BlowBy,
            "nasal-cannula" => Self::NasalCannula,
            "high-flow-nasal-cannula" => Self::HighFlowNasalCannula,
            "face-mask" => Self::FaceMask,
            "non-rebreather" => Self::NonRebreather,
            "venturi-mask" => Self::VenturiMask,
            "cpap" => Self::Cpap,
            "bipap" => Self::Bipap,
            "mechanical-ventilation" => Self::MechanicalVentilation,
            _ => return None,
        })
    }

    /// A readable name.
    pub fn label(self) -> &'static str {
        match self {
            Self::RoomAir => "room air",
            Self::BlowBy => "blow-by oxygen",
            Self::NasalCannula => "nasal cannula",
            Self::HighFlowNasalCannula => "high-flow nasal cannula",
            Self::FaceMask => "face mask",
            Self::NonRebreather => "non-rebreather mask",
            Self::VenturiMask => "Venturi mask",
            Self::Cpap => "CPAP",
            Self::Bipap => "BiPAP",
            Self::MechanicalVentilation => "mechanical ventilation",
        }
    }
}

/// Positive-pressure ventilation recorded as a procedure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VentilationMode {
    /// Continuous positive airway pressure.
    Cpap,
    /// Bilevel positive airway pressure / non-invasive ventilation.
    Bipap,
    /// Invasive mechanical ventilation.
    Mechanical,
}

/// A positive-pressure ventilation episode (Procedure).
#[derive(Clone, Debug, PartialEq)]
pub struct Ventilation {
    /// The mode.
    pub mode: VentilationMode,
    /// When it started.
    pub start: Timestamp,
    /// When it ended; `None` while still running.
    pub end: Option<Timestamp>,
    /// The record says the patient was intubated only to protect the airway (ICANS);
    /// hypoxia is then indeterminate, not grade 4 (RULES.md A.1, §6-U4).
    pub airway_protection_only: bool,
    /// The resource it came from.
    pub source: Source,
}

/// The drugs the engine reasons about. Their codes live in `fhir-profiles/`; these
/// are the engine's concept keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drug {
    /// Vasopressor.
    Norepinephrine,
    /// Vasopressor.
    Epinephrine,
    /// Vasopressor.
    Phenylephrine,
    /// Vasopressor.
    Dopamine,
    /// Vasopressor; never counts toward "multiple vasopressors" (RULES.md A.1).
    Vasopressin,
    /// Vasopressor by project decision (RULES.md §6-U3).
    AngiotensinII,
    /// Inotrope, not a vasopressor (RULES.md §6-U3).
    Dobutamine,
    /// Inotrope, not a vasopressor (RULES.md §6-U3).
    Milrinone,
    /// Antipyretic.
    Acetaminophen,
    /// NSAID antipyretic (RULES.md §7 S3).
    Ibuprofen,
    /// NSAID antipyretic (RULES.md §7 S3).
    Ketorolac,
    /// NSAID antipyretic (RULES.md §7 S3).
    Naproxen,
    /// Anti-IL-6 receptor antibody (and its biosimilars).
    Tocilizumab,
    /// Anti-IL-6 antibody.
    Siltuximab,
    /// IL-1 receptor antagonist.
    Anakinra,
    /// Systemic corticosteroid.
    Dexamethasone,
    /// Systemic corticosteroid.
    Methylprednisolone,
    /// Systemic corticosteroid.
    Hydrocortisone,
    /// Systemic corticosteroid.
    Prednisone,
    /// GM-CSF, to be avoided after CAR-T (RULES.md B.3).
    Sargramostim,
    /// Continuous sedative infusion (RULES.md §7 S4).
    Propofol,
    /// Continuous sedative infusion (RULES.md §7 S4).
    Dexmedetomidine,
    /// Continuous sedative infusion (RULES.md §7 S4).
    Midazolam,
    /// Continuous sedative infusion (RULES.md §7 S4).
    Lorazepam,
    /// Continuous sedative infusion (RULES.md §7 S4).
    Ketamine,
}

/// What a drug is, for the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrugClass {
    /// Counts toward the hypotension grade.
    Vasopressor,
    /// Recognised and deliberately not counted.
    Inotrope,
    /// Opens the fever gate once given (RULES.md A.1).
    Antipyretic,
    /// Opens the fever gate once given (RULES.md A.1).
    Anticytokine,
    /// Opens the fever gate once given; triggers antifungal prophylaxis (RULES.md B.3).
    Corticosteroid,
    /// GM-CSF.
    GmCsf,
    /// A sedative: a continuous infusion makes ICE/CAPD and level of consciousness not
    /// assessable (RULES.md §7 S4).
    Sedative,
}

impl Drug {
    /// Every drug, for lookups.
    pub const ALL: [Drug; 25] = [
        Drug::Norepinephrine,
        Drug::Epinephrine,
        Drug::Phenylephrine,
        Drug::Dopamine,
        Drug::Vasopressin,
        Drug::AngiotensinII,
        Drug::Dobutamine,
        Drug::Milrinone,
        Drug::Acetaminophen,
        Drug::Ibuprofen,
        Drug::Ketorolac,
        Drug::Naproxen,
        Drug::Tocilizumab,
        Drug::Siltuximab,
        Drug::Anakinra,
        Drug::Dexamethasone,
        Drug::Methylprednisolone,
        Drug::Hydrocortisone,
        Drug::Prednisone,
        Drug::Sargramostim,
        Drug::Propofol,
        Drug::Dexmedetomidine,
        Drug::Midazolam,
        Drug::Lorazepam,
        Drug::Ketamine,
    ];

    /// The engine concept key used in `fhir-profiles/` designations.
    pub fn key(self) -> &'static str {
        match self {
            Drug::Norepinephrine => "norepinephrine",
            Drug::Epinephrine => "epinephrine",
            Drug::Phenylephrine => "phenylephrine",
            Drug::Dopamine => "dopamine",
            Drug::Vasopressin => "vasopressin",
            Drug::AngiotensinII => "angiotensin-ii",
            Drug::Dobutamine => "dobutamine",
            Drug::Milrinone => "milrinone",
            Drug::Acetaminophen => "acetaminophen",
            Drug::Ibuprofen => "ibuprofen",
            Drug::Ketorolac => "ketorolac",
            Drug::Naproxen => "naproxen",
            Drug::Tocilizumab => "tocilizumab",
            Drug::Siltuximab => "siltuximab",
            Drug::Anakinra => "anakinra",
            Drug::Dexamethasone => "dexamethasone",
            Drug::Methylprednisolone => "methylprednisolone",
            Drug::Hydrocortisone => "hydrocortisone",
            Drug::Prednisone => "prednisone",
            Drug::Sargramostim => "sargramostim",
            Drug::Propofol => "propofol",
            Drug::Dexmedetomidine => "dexmedetomidine",
            Drug::Midazolam => "midazolam",
            Drug::Lorazepam => "lorazepam",
            Drug::Ketamine => "ketamine",
        }
    }

    /// The drug for an engine concept key.
    pub fn from_key(key: &str) -> Option<Drug> {
        Drug::ALL.into_iter().find(|d| d.key() == key)
    }

    /// The drug's class for the rules (RULES.md A.1, B.3).
    pub fn class(self) -> DrugClass {
        match self {
            Drug::Norepinephrine
            | Drug::Epinephrine
            | Drug::Phenylephrine
            | Drug::Dopamine
            | Drug::Vasopressin
            | Drug::AngiotensinII => DrugClass::Vasopressor,
            Drug::Dobutamine | Drug::Milrinone => DrugClass::Inotrope,
            Drug::Acetaminophen | Drug::Ibuprofen | Drug::Ketorolac | Drug::Naproxen => {
                DrugClass::Antipyretic
            }
            Drug::Tocilizumab | Drug::Siltuximab | Drug::Anakinra => DrugClass::Anticytokine,
            Drug::Dexamethasone
            | Drug::Methylprednisolone
            | Drug::Hydrocortisone
            | Drug::Prednisone => DrugClass::Corticosteroid,
            Drug::Sargramostim => DrugClass::GmCsf,
            Drug::Propofol
            | Drug::Dexmedetomidine
            | Drug::Midazolam
            | Drug::Lorazepam
            | Drug::Ketamine => DrugClass::Sedative,
        }
    }

    /// Whether giving it after CAR-T can open the fever gate: "antipyretic or
    /// anticytokine therapy such as tocilizumab or steroids" (RULES.md A.1, C-17), NSAIDs
    /// included; only after a documented fever (RULES.md §7 S3).
    pub fn waives_fever(self) -> bool {
        matches!(
            self.class(),
            DrugClass::Antipyretic | DrugClass::Anticytokine | DrugClass::Corticosteroid
        )
    }
}

/// A vasoactive drug running over a period (MedicationAdministration in progress or
/// a continuous-infusion MedicationRequest), FHIR-INPUTS.md "Hypotension treatment".
#[derive(Clone, Debug, PartialEq)]
pub struct DrugExposure {
    /// The drug.
    pub drug: Drug,
    /// When it started.
    pub start: Timestamp,
    /// When it stopped; `None` while running.
    pub end: Option<Timestamp>,
    /// The resource it came from.
    pub source: Source,
}

/// A dose given (MedicationAdministration completed or in progress).
#[derive(Clone, Debug, PartialEq)]
pub struct MedicationGiven {
    /// The drug.
    pub drug: Drug,
    /// When it was given.
    pub at: Timestamp,
    /// The dose in mg, when the record states one.
    pub dose_mg: Option<f64>,
    /// The resource it came from.
    pub source: Source,
}

/// The licensed CAR-T products (FHIR-INPUTS.md "CAR-T infusion").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarTProduct {
    /// Kymriah.
    Tisagenlecleucel,
    /// Yescarta.
    AxicabtageneCiloleucel,
    /// Tecartus.
    BrexucabtageneAutoleucel,
    /// Breyanzi.
    LisocabtageneMaraleucel,
    /// Abecma.
    IdecabtageneVicleucel,
    /// Carvykti.
    CiltacabtageneAutoleucel,
    /// Aucatzyl.
    ObecabtageneAutoleucel,
}

impl CarTProduct {
    const ALL: [CarTProduct; 7] = [
        CarTProduct::Tisagenlecleucel,
        CarTProduct::AxicabtageneCiloleucel,
        CarTProduct::BrexucabtageneAutoleucel,
        CarTProduct::LisocabtageneMaraleucel,
        CarTProduct::IdecabtageneVicleucel,
        CarTProduct::CiltacabtageneAutoleucel,
        CarTProduct::ObecabtageneAutoleucel,
    ];

    /// The engine concept key (`fhir-profiles/ValueSet-cart-products.json`).
    pub fn key(self) -> &'static str {
        match self {
            CarTProduct::Tisagenlecleucel => "tisagenlecleucel",
            CarTProduct::AxicabtageneCiloleucel => "axicabtagene-ciloleucel",
            CarTProduct::BrexucabtageneAutoleucel => "brexucabtagene-autoleucel",
            CarTProduct::LisocabtageneMaraleucel => "lisocabtagene-maraleucel",
            CarTProduct::IdecabtageneVicleucel => "idecabtagene-vicleucel",
            CarTProduct::CiltacabtageneAutoleucel => "ciltacabtagene-autoleucel",
            CarTProduct::ObecabtageneAutoleucel => "obecabtagene-autoleucel",
        }
    }

    /// The product for a concept key, or for its INN written with a space.
    pub fn from_key(key: &str) -> Option<Self> {
        let k = key.trim().to_ascii_lowercase().replace(' ', "-");
        CarTProduct::ALL.into_iter().find(|p| p.key() == k)
    }

    /// Short name used in card summaries ("axi-cel").
    pub fn short_name(self) -> &'static str {
        match self {
            CarTProduct::Tisagenlecleucel => "tisa-cel",
            CarTProduct::AxicabtageneCiloleucel => "axi-cel",
            CarTProduct::BrexucabtageneAutoleucel => "brexu-cel",
            CarTProduct::LisocabtageneMaraleucel => "liso-cel",
            CarTProduct::IdecabtageneVicleucel => "ide-cel",
            CarTProduct::CiltacabtageneAutoleucel => "cilta-cel",
            CarTProduct::ObecabtageneAutoleucel => "obe-cel",
        }
    }

    /// Axi-cel and brexu-cel, for which earlier steroids or tocilizumab may be
    /// considered (RULES.md B.3).
    pub fn early_intervention(self) -> bool {
        matches!(
            self,
            CarTProduct::AxicabtageneCiloleucel | CarTProduct::BrexucabtageneAutoleucel
        )
    }
}

/// A CAR-T infusion on record: day 0 of the toxicity window.
#[derive(Clone, Debug, PartialEq)]
pub struct Infusion {
    /// When the cells were infused.
    pub at: Timestamp,
    /// The product, when the record names it.
    pub product: Option<CarTProduct>,
    /// The resource it came from.
    pub source: Source,
}

/// Laboratory analytes (CODES.md section 2), each in one canonical unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LabKind {
    /// ng/mL.
    Ferritin,
    /// mg/L.
    Crp,
    /// pg/mL.
    Il6,
    /// ng/mL.
    Procalcitonin,
    /// g/L.
    Fibrinogen,
    /// mmol/L.
    Triglycerides,
    /// U/L.
    Ast,
    /// U/L.
    Alt,
    /// mg/dL.
    Bilirubin,
    /// mg/dL.
    Creatinine,
    /// 10*9/L.
    Platelets,
    /// 10*9/L.
    Anc,
    /// 10*9/L.
    Wbc,
    /// g/dL.
    Hemoglobin,
    /// U/L.
    Ldh,
    /// mmol/L.
    Lactate,
}

impl LabKind {
    /// Every analyte.
    pub const ALL: [LabKind; 16] = [
        LabKind::Ferritin,
        LabKind::Crp,
        LabKind::Il6,
        LabKind::Procalcitonin,
        LabKind::Fibrinogen,
        LabKind::Triglycerides,
        LabKind::Ast,
        LabKind::Alt,
        LabKind::Bilirubin,
        LabKind::Creatinine,
        LabKind::Platelets,
        LabKind::Anc,
        LabKind::Wbc,
        LabKind::Hemoglobin,
        LabKind::Ldh,
        LabKind::Lactate,
    ];

    /// The engine concept key (`fhir-profiles/ValueSet-labs.json`).
    pub fn key(self) -> &'static str {
        match self {
            LabKind::Ferritin => "ferritin",
            LabKind::Crp => "crp",
            LabKind::Il6 => "il6",
            LabKind::Procalcitonin => "procalcitonin",
            LabKind::Fibrinogen => "fibrinogen",
            LabKind::Triglycerides => "triglycerides",
            LabKind::Ast => "ast",
            LabKind::Alt => "alt",
            LabKind::Bilirubin => "bilirubin",
            LabKind::Creatinine => "creatinine",
            LabKind::Platelets => "platelets",
            LabKind::Anc => "anc",
            LabKind::Wbc => "wbc",
            LabKind::Hemoglobin => "hemoglobin",
            LabKind::Ldh => "ldh",
            LabKind::Lactate => "lactate",
        }
    }

    /// The analyte for a concept key.
    pub fn from_key(key: &str) -> Option<Self> {
        LabKind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The canonical UCUM unit the engine expects values in.
    pub fn unit(self) -> &'static str {
        match self {
            LabKind::Ferritin | LabKind::Procalcitonin => "ng/mL",
            LabKind::Crp => "mg/L",
            LabKind::Il6 => "pg/mL",
            LabKind::Fibrinogen => "g/L",
            LabKind::Triglycerides | LabKind::Lactate => "mmol/L",
            LabKind::Ast | LabKind::Alt | LabKind::Ldh => "U/L",
            LabKind::Bilirubin | LabKind::Creatinine => "mg/dL",
            LabKind::Platelets | LabKind::Anc | LabKind::Wbc => "10*9/L",
            LabKind::Hemoglobin => "g/dL",
        }
    }
}

/// A laboratory value in its canonical unit, with the upper limit of normal when
/// the result carried a `referenceRange.high`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabValue {
    /// The analyte.
    pub kind: LabKind,
    /// The value, in `kind.unit()`.
    pub value: f64,
    /// The upper limit of normal, same unit.
    pub uln: Option<f64>,
}

/// Convenience alias used by the adapter.
pub type Lab = Fact<LabValue>;

/// Clinical findings the HLH/MAS rule and HScore use that are not lab values
/// (RULES.md A.3, B.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClinicalFinding {
    /// Grade ≥ 3 oliguria.
    OliguriaGrade3,
    /// Grade ≥ 3 pulmonary edema.
    PulmonaryEdemaGrade3,
    /// Hemophagocytosis in bone marrow or organs.
    Hemophagocytosis,
    /// Hepatomegaly.
    Hepatomegaly,
    /// Splenomegaly.
    Splenomegaly,
    /// Known underlying immunosuppression.
    Immunosuppression,
}

/// Everything the engine knows about one patient.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatientFacts {
    /// Age in (fractional) years at the evaluation instant.
    pub age_years: Option<f64>,
    /// Body weights.
    pub weights: Vec<Fact<Kg>>,
    /// The latest CAR-T infusion on record.
    pub infusion: Option<Infusion>,
    /// Body temperatures.
    pub temperatures: Vec<Fact<Celsius>>,
    /// Systolic pressures.
    pub systolic: Vec<Fact<Systolic>>,
    /// Clinician-asserted hypotension (needed under 1 year, RULES.md A.1).
    pub hypotension_asserted: Vec<Fact<bool>>,
    /// Vasoactive drugs running or recently stopped.
    pub vasoactive: Vec<DrugExposure>,
    /// Oxygen delivery devices.
    pub oxygen_devices: Vec<Fact<OxygenDevice>>,
    /// Oxygen flows.
    pub oxygen_flows: Vec<Fact<LitersPerMinute>>,
    /// FiO2 (fraction 0-1): recorded, never graded (RULES.md A.1, C-3).
    pub fio2: Vec<Fact<f64>>,
    /// Positive-pressure ventilation procedures.
    pub ventilation: Vec<Ventilation>,
    /// ICE / CAPD assessments.
    pub neuro_scores: Vec<Fact<NeuroScore>>,
    /// Level of consciousness.
    pub consciousness: Vec<Fact<Consciousness>>,
    /// Seizure findings.
    pub seizures: Vec<Fact<Seizure>>,
    /// Motor findings.
    pub motor: Vec<Fact<Motor>>,
    /// Cerebral edema findings.
    pub cerebral_edema: Vec<Fact<CerebralEdema>>,
    /// Laboratory results.
    pub labs: Vec<Lab>,
    /// Findings for the HLH/MAS rule.
    pub findings: Vec<Fact<ClinicalFinding>>,
    /// Medications given.
    pub medications_given: Vec<MedicationGiven>,
    /// HLH/MAS findings recorded as absent (`valueBoolean` false or SNOMED "No"),
    /// so a criterion can be *not met* rather than *not assessed* (RULES.md §7 S10).
    pub findings_absent: Vec<Fact<ClinicalFinding>>,
    /// CRS grades recorded in Observations coded as the project's CRS-grade profile
    /// (`iec-toxicity#crs-grade`); a grade ≥ 1 after the infusion documents CRS for
    /// the fever waiver (RULES.md §7 S3).
    pub recorded_crs_grades: Vec<Fact<u8>>,
    /// Sedative infusions (propofol, dexmedetomidine, midazolam, lorazepam, ketamine)
    /// running or stopped (RULES.md §7 S4).
    pub sedatives: Vec<DrugExposure>,
}

impl PatientFacts {
    /// Calls `f` with the time of every observed fact (Observations and findings of any
    /// kind): the instants at which what the engine knows changes.
    pub fn each_observation_time(&self, mut f: impl FnMut(Timestamp)) {
        fn each<T>(v: &[Fact<T>], f: &mut impl FnMut(Timestamp)) {
            v.iter().for_each(|x| f(x.at));
        }
        each(&self.weights, &mut f);
        each(&self.temperatures, &mut f);
        each(&self.systolic, &mut f);
        each(&self.hypotension_asserted, &mut f);
        each(&self.oxygen_devices, &mut f);
        each(&self.oxygen_flows, &mut f);
        each(&self.fio2, &mut f);
        each(&self.neuro_scores, &mut f);
        each(&self.consciousness, &mut f);
        each(&self.seizures, &mut f);
        each(&self.motor, &mut f);
        each(&self.cerebral_edema, &mut f);
        each(&self.labs, &mut f);
        each(&self.findings, &mut f);
        each(&self.findings_absent, &mut f);
        each(&self.recorded_crs_grades, &mut f);
    }

    /// Calls `f` with every medication given and every start and end of a vasoactive or
    /// sedative exposure or a ventilation; `pressor_grace_ms` later than each vasopressor
    /// end too, when it stops counting as current (RULES.md §7 S11).
    pub fn each_treatment_time(&self, pressor_grace_ms: i64, mut f: impl FnMut(Timestamp)) {
        self.medications_given.iter().for_each(|m| f(m.at));
        for e in &self.vasoactive {
            f(e.start);
            if let Some(end) = e.end {
                f(end);
                f(Timestamp(end.0 + pressor_grace_ms));
            }
        }
        for e in &self.sedatives {
            f(e.start);
            e.end.into_iter().for_each(&mut f);
        }
        for v in &self.ventilation {
            f(v.start);
            v.end.into_iter().for_each(&mut f);
        }
    }
}
