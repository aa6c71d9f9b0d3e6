//! Drawings of engine results for people: the SVG chart of the toxicity course
//! (issue 12) and the app page that shows it (issue 13). Depends on `domain` and
//! `protocol` (time formats, clinician words) only; used by `cli` and `http`. No rule is
//! decided while drawing.
//!
//! The SVG is written by hand rather than with plotters: plotters' SVG backend draws
//! bare primitives (its backend style carries a colour and a width only), so it can
//! neither dash a line (needed to read the chart in grey scale) nor nest a `<title>`
//! tooltip in a mark (needed to show each point's grade and evidence).

mod chart;
mod page;

pub use chart::course_svg;
pub use page::{APP_CSS, APP_JS, CSS_PATH, JS_PATH, PageInput, course_page, escape_html};
