//! The app page in a real browser (issue 13): Debian's headless Chromium driven through
//! chromedriver (WebDriver) by fantoccini. The page is served by a tiny actix server inside
//! the test, with the CSP the app is served under, for a demo patient's course built as the
//! service builds it (demo FHIR resources → adapter → course).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages `chromium` and
//! `chromium-driver`; `.ci/chromium.sh` installs them). Without them the tests are skipped
//! outside CI; in CI, or with `CRS_CDS_TEST_BROWSER=required` (exported by `.ci/run`), their
//! absence fails. Screenshots go to `target/browser/`; `UPDATE_SCREENSHOT=1` also writes
//! `docs/app-screenshot.png`.

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{DateTime, Utc};
use crs_cds::adapter::{Document, Terminology, map_documents_for_patient};
use crs_cds::domain::{Course, GradeState, Policy, Syndrome, Timestamp};
use crs_cds::http::routes::app::{APP_WINDOW_HOURS, patient_label};
use crs_cds::protocol::cards::text::{clinician_units, without_rule_ids};
use crs_cds::protocol::course::for_card;
use crs_cds::protocol::discovery::Hook;
use crs_cds::render::{APP_CSS, APP_JS, CSS_PATH, JS_PATH, PageInput, course_page};
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The CSP the app's routes send (the page must work under it).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:";

/// One browser at a time: the machine (and CI) has two cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether the browser tests must run (CI, or `CRS_CDS_TEST_BROWSER=required`).
fn required() -> bool {
    required_by(
        std::env::var("CI").ok().as_deref(),
        std::env::var("CRS_CDS_TEST_BROWSER").ok().as_deref(),
    )
}

/// The rule of [`required`], given the two variables: in CI (whatever its value), or when
/// asked for, a missing browser is a failure, never a skip.
fn required_by(ci: Option<&str>, flag: Option<&str>) -> bool {
    ci.is_some() || flag == Some("required")
}

#[test]
fn a_missing_browser_fails_in_ci_or_when_required_and_is_skipped_only_elsewhere() {
    assert!(required_by(Some("true"), None));
    assert!(required_by(Some(""), None));
    assert!(required_by(None, Some("required")));
    assert!(required_by(Some("true"), Some("no")));
    assert!(!required_by(None, None));
    assert!(!required_by(None, Some("")));
}

/// chromedriver and its process group; killed (with every Chromium it started) and the
/// profile directory removed when dropped, whatever the test did.
struct Driver {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group was created for chromedriver (`process_group(0)`): its id is the
        // child's pid, and it holds only chromedriver and the browsers it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Runs `f` with a fresh headless Chromium whose viewport is `width` × `height` CSS px:
/// starts chromedriver on a free loopback port, opens a session with a temporary profile,
/// and always cleans up (session closed, chromedriver and Chromium killed, profile
/// removed), also when `f` panics. `None` when the browser is not installed and not
/// required (the caller skips).
pub async fn with_browser<T, F, Fut>(width: u32, height: u32, f: F) -> Option<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T>,
{
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            !required(),
            "the browser tests are required here (CI or CRS_CDS_TEST_BROWSER=required) but \
             {CHROMIUM} or {CHROMEDRIVER} is missing: run .ci/chromium.sh"
        );
        eprintln!("chromium or chromedriver not installed: browser test skipped");
        return None;
    }
    let _one = ONE_BROWSER.lock().await;
    let profile = tempfile::tempdir().expect("a temporary profile directory");
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        _profile: profile,
    };
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "chromedriver listens on port {port}"
    );
    let args = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--hide-scrollbars".into(),
        "--force-device-scale-factor=1".into(),
        // Chromium's windows are at least 500 px wide; the viewport is set exactly by
        // device-metrics emulation below.
        format!("--window-size={},{}", width.max(500), height + 200),
        format!("--user-data-dir={}", driver._profile.path().display()),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": args,
            "mobileEmulation": { "deviceMetrics": {
                "width": width, "height": height, "pixelRatio": 1.0, "mobile": false, "touch": false,
            } },
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!("a JSON object literal")
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium");
    let outcome = AssertUnwindSafe(f(client.clone())).catch_unwind().await;
    let _ = client.close().await;
    drop(driver);
    match outcome {
        Ok(v) => Some(v),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A demo patient as the service would show it: the demo FHIR resources at `now`, through
/// the adapter, the course since the infusion (30 days at most, as the card), the Patient's
/// name and birth date, the adapter's issues.
struct Shown {
    course: Option<Course>,
    label: String,
    issues: Vec<String>,
    now: Timestamp,
}

/// The page's input from FHIR documents, as the app computes it: the adapter at `at` over
/// the app's window, the card's course (`for_card`), the app's patient label, the adapter's
/// issues as the app writes them.
fn shown_from(id: &str, patient: &Value, documents: &[Document<'_>], at: Timestamp) -> Shown {
    let mapped = map_documents_for_patient(
        Some(id),
        documents,
        None,
        &[],
        at,
        &Terminology::embedded(),
        APP_WINDOW_HOURS,
    );
    Shown {
        course: for_card(Hook::PatientView, &mapped.facts, at, &Policy::default()),
        label: patient_label(patient),
        issues: mapped
            .issues
            .iter()
            .map(|i| format!("{}: {}", i.location, i.message))
            .collect(),
        now: at,
    }
}

/// A demo patient (`src/demo/patients.rs`) at `now`.
fn demo_patient(id: &str, now: DateTime<Utc>) -> Shown {
    demo_patient_at(id, now, now)
}

/// A demo patient whose record was generated at `generated`, graded at `at`.
fn demo_patient_at(id: &str, generated: DateTime<Utc>, at: DateTime<Utc>) -> Shown {
    let now = generated;
    let reference = format!("Patient/{id}");
    let resources: Vec<Value> = crs_cds::demo::patients::resources(now)
        .into_iter()
        .filter(|r| {
            (r["resourceType"] == "Patient" && r["id"] == id)
                || r["subject"]["reference"] == reference.as_str()
                || r["patient"]["reference"] == reference.as_str()
        })
        .collect();
    let patient = resources
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .cloned()
        .expect("the demo patient exists");
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": resources.iter().map(|r| json!({ "resource": r })).collect::<Vec<_>>(),
    })
    .to_string();
    shown_from(
        id,
        &patient,
        &[Document {
            origin: "demo",
            json: &bundle,
        }],
        Timestamp(at.timestamp_millis()),
    )
}

/// A course fixture (`fixtures/courses/`): its prefetch, at its expected end.
fn fixture_course(case: &str) -> Shown {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/courses");
    let read = |sub: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(sub).join(format!("{case}.json")))
            .expect("the fixture exists");
        serde_json::from_str(&text).expect("JSON")
    };
    let (request, expected) = (read("requests"), read("expected"));
    let until = chrono::DateTime::parse_from_rfc3339(expected["until"].as_str().expect("until"))
        .expect("RFC 3339");
    let texts: Vec<(String, String)> = request["prefetch"]
        .as_object()
        .expect("prefetch")
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let documents: Vec<Document<'_>> = texts
        .iter()
        .map(|(o, j)| Document { origin: o, json: j })
        .collect();
    let id = request["context"]["patientId"].as_str().expect("patientId");
    shown_from(
        id,
        &request["prefetch"]["patient"],
        &documents,
        Timestamp(until.timestamp_millis()),
    )
}

/// Serves the page and its two assets on a free loopback port, with the app's CSP.
async fn serve(page: String) -> (String, actix_web::dev::ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("bound").port();
    let page = web::Data::new(page);
    let server = HttpServer::new(move || {
        let header = ("Content-Security-Policy", CSP);
        App::new()
            .app_data(page.clone())
            .route(
                "/app/course",
                web::get().to(move |p: web::Data<String>| async move {
                    HttpResponse::Ok()
                        .insert_header(header)
                        .content_type("text/html; charset=utf-8")
                        .body(p.get_ref().clone())
                }),
            )
            .route(
                CSS_PATH,
                web::get().to(move || async move {
                    HttpResponse::Ok()
                        .insert_header(header)
                        .content_type("text/css; charset=utf-8")
                        .body(APP_CSS)
                }),
            )
            .route(
                JS_PATH,
                web::get().to(move || async move {
                    HttpResponse::Ok()
                        .insert_header(header)
                        .content_type("text/javascript; charset=utf-8")
                        .body(APP_JS)
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .expect("listening")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/app/course"), handle)
}

fn page_for(shown: &Shown) -> String {
    course_page(&PageInput {
        course: shown.course.as_ref(),
        patient_label: &shown.label,
        data_issues: &shown.issues,
        now: shown.now,
    })
}

/// The grade points the chart must have: one per instant with a grade (exact or lower
/// bound) per syndrome.
fn graded_points(c: &Course, s: Syndrome) -> usize {
    c.series
        .iter()
        .filter(|p| p.state(s).floor().is_some())
        .count()
}

/// The id of the one `.course-chart` the page displays (it draws a wide and a narrow one
/// and CSS shows one of them).
async fn displayed_chart(client: &Client) -> String {
    let mut shown = Vec::new();
    for chart in client
        .find_all(Locator::Css(".course-chart"))
        .await
        .expect("charts")
    {
        if chart.is_displayed().await.expect("state") {
            shown.push(chart.attr("id").await.expect("attr").expect("an id"));
        }
    }
    assert_eq!(shown.len(), 1, "exactly one chart displayed: {shown:?}");
    shown.remove(0)
}

/// Asserts the displayed chart has one `.grade-point` per graded instant of each syndrome,
/// one hatched band per not-assessable stretch, and the episodes table one row per episode
/// of `c`; returns the displayed chart's id.
async fn assert_chart_and_table_show(client: &Client, c: &Course) -> String {
    let chart = displayed_chart(client).await;
    for s in [Syndrome::Crs, Syndrome::Icans] {
        let name = s.name().to_lowercase();
        let marks = client
            .find_all(Locator::Css(&format!(
                "#{chart} .grade-point[data-syndrome=\"{name}\"]"
            )))
            .await
            .expect("grade points");
        assert_eq!(marks.len(), graded_points(c, s), "{} points", s.name());
        let bands = client
            .find_all(Locator::Css(&format!("#{chart} .gap-band.{name}")))
            .await
            .expect("gap bands");
        assert_eq!(
            bands.len(),
            c.syndrome(s).not_assessable.len(),
            "{name} gaps"
        );
    }
    let rows = client
        .find_all(Locator::Css("tr.episode-row"))
        .await
        .expect("episode rows");
    assert_eq!(rows.len(), c.crs.episodes.len() + c.icans.episodes.len());
    chart
}

/// Opens the page at `url` and waits until app.js has run (under the page's CSP).
async fn open_page(client: &Client, url: &str) {
    client.goto(url).await.expect("the page loads");
    client
        .wait()
        .for_element(Locator::Css("html[data-app=\"ready\"]"))
        .await
        .expect("app.js ran under the CSP");
}

/// Asserts the document does not scroll sideways.
async fn assert_no_sideways_scroll(client: &Client) {
    let scroll = js_f64(client, "return document.documentElement.scrollWidth").await;
    let view = js_f64(client, "return document.documentElement.clientWidth").await;
    assert!(scroll <= view, "no horizontal scroll: {scroll} > {view}");
}

/// The heading of the details panel.
async fn details_heading(client: &Client) -> String {
    client
        .find(Locator::Id("details-title"))
        .await
        .expect("the details panel")
        .text()
        .await
        .expect("text")
}

/// Taps the last point of the worst grade of `s` (`max_by_key` keeps the last maximum) and asserts the details panel shows that
/// point's grade; returns the point's index among the points graded for `s`.
async fn tap_worst_point(client: &Client, c: &Course, s: Syndrome) -> usize {
    let (n, state) = c
        .series
        .iter()
        .map(|q| q.state(s))
        .filter(|st| st.floor().is_some())
        .enumerate()
        .max_by_key(|(_, st)| st.floor())
        .expect("a graded point");
    point(client, s, n)
        .await
        .click()
        .await
        .expect("the point is tappable");
    assert_eq!(details_heading(client).await, details_title(s, state));
    n
}

/// The heading the details panel shows for a point.
fn details_title(s: Syndrome, st: GradeState) -> String {
    match st {
        GradeState::Graded(g) => format!("{} grade {g}", s.name()),
        GradeState::AtLeast(g) => format!(
            "{} grade at least {g} (a domain could not be assessed: the grade may be higher)",
            s.name()
        ),
        GradeState::NotAssessable => format!("{} not assessable", s.name()),
    }
}

async fn js_f64(client: &Client, script: &str) -> f64 {
    client
        .execute(script, vec![])
        .await
        .expect("the script runs")
        .as_f64()
        .unwrap_or_else(|| panic!("{script} returns a number"))
}

async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).expect("target/browser");
    let path = dir.join(name);
    std::fs::write(&path, &png).expect("screenshot written");
    path
}

/// The `.grade-point` of syndrome `s` for the `i`-th series point graded for `s`, in the
/// displayed chart.
async fn point(client: &Client, s: Syndrome, nth: usize) -> fantoccini::elements::Element {
    let chart = displayed_chart(client).await;
    let marks = client
        .find_all(Locator::Css(&format!(
            "#{chart} .grade-point[data-syndrome=\"{}\"]",
            s.name().to_lowercase()
        )))
        .await
        .expect("grade points");
    marks
        .into_iter()
        .nth(nth)
        .expect("the point is on the chart")
}

/// The index among the points graded for CRS of the first instant whose CRS grade differs
/// from its ICANS grade (so the two marks do not overlap), with the point.
fn distinct_crs_point(c: &Course) -> (usize, &crs_cds::domain::CoursePoint) {
    c.series
        .iter()
        .filter(|p| p.crs.floor().is_some())
        .enumerate()
        .find(|(_, p)| p.crs.floor() != p.icans.floor())
        .expect("an instant where CRS and ICANS grades differ")
}

#[tokio::test]
async fn the_course_page_shows_every_point_and_episode_and_details_on_tap_hover_and_keys_at_1400_px()
 {
    let shown = demo_patient("demo-tocilizumab-history", Utc::now());
    let c = shown.course.clone().expect("a CAR-T course");
    let (url, server) = serve(page_for(&shown)).await;
    with_browser(1400, 1000, |client| async move {
        open_page(&client, &url).await;
        // The chart is rendered, at the width of its column.
        let chart = client
            .find(Locator::Id("course-chart"))
            .await
            .expect("the chart");
        assert!(chart.is_displayed().await.expect("displayed"));
        let (_, _, w, h) = chart.rectangle().await.expect("a box");
        assert!(w > 600.0 && h > 200.0, "chart {w} × {h}");
        // As many marks as graded instants, as many rows as episodes, in the wide chart.
        assert_eq!(
            assert_chart_and_table_show(&client, &c).await,
            "course-chart"
        );
        let rows = client
            .find_all(Locator::Css("tr.episode-row"))
            .await
            .expect("episode rows");
        assert!(!rows.is_empty(), "the demo patient has a CRS episode");
        // The stylesheet applied under the CSP: the header has its colour.
        let header = client
            .find(Locator::Css(".app-header"))
            .await
            .expect("header");
        assert_eq!(
            header.css_value("background-color").await.expect("style"),
            "rgba(18, 53, 91, 1)"
        );

        // Tap (click) a CRS point: the panel shows its grade, evidence and time.
        let (i, p) = distinct_crs_point(&c);
        let mark = point(&client, Syndrome::Crs, i).await;
        let panel = client
            .find(Locator::Id("point-details"))
            .await
            .expect("the details panel");
        assert!(
            !panel.is_displayed().await.expect("state"),
            "hidden at first"
        );
        mark.click().await.expect("the point is clickable");
        assert!(panel.is_displayed().await.expect("state"));
        let title = details_heading(&client).await;
        assert_eq!(title, details_title(Syndrome::Crs, p.crs));
        let evidence = client
            .find(Locator::Id("details-evidence"))
            .await
            .expect("evidence")
            .text()
            .await
            .expect("text");
        let first = p.crs_findings.first().expect("the grade rests on findings");
        assert!(
            evidence.contains(&clinician_units(&without_rule_ids(&first.finding))),
            "{evidence}"
        );
        assert!(!evidence.contains("Observation/"), "no resource ids");
        let time = client
            .find(Locator::Id("details-time"))
            .await
            .expect("time")
            .text()
            .await
            .expect("text");
        assert!(
            time.contains("UTC") && time.contains(&format!("day {}", c.day(p.at))),
            "{time}"
        );

        // The right arrow moves to the next CRS point and the panel follows it.
        let next = c
            .series
            .iter()
            .filter(|q| q.crs.floor().is_some())
            .nth(i + 1)
            .expect("a later CRS point");
        mark.send_keys(&Key::Right.to_string()).await.expect("keys");
        let focused = client.active_element().await.expect("focus");
        assert_eq!(
            focused.attr("data-time").await.expect("attr"),
            point(&client, Syndrome::Crs, i + 1)
                .await
                .attr("data-time")
                .await
                .expect("attr")
        );
        let title = details_heading(&client).await;
        assert_eq!(title, details_title(Syndrome::Crs, next.crs));

        // Escape closes the panel.
        focused
            .send_keys(&Key::Escape.to_string())
            .await
            .expect("keys");
        assert!(
            !panel.is_displayed().await.expect("state"),
            "closed by Escape"
        );

        // Hovering an ICANS point shows it.
        let icans = point(&client, Syndrome::Icans, 0).await;
        let q = c
            .series
            .iter()
            .find(|q| q.icans.floor().is_some())
            .expect("an ICANS point");
        let hover = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
            element: icans,
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        client.perform_actions(hover).await.expect("hover");
        assert!(panel.is_displayed().await.expect("state"));
        let title = details_heading(&client).await;
        assert_eq!(title, details_title(Syndrome::Icans, q.icans));
        client.release_actions().await.expect("release");

        // The wide layout: chart and tables side by side, no horizontal scroll.
        let (cx, cy, cw, _) = client
            .find(Locator::Css(".col-chart"))
            .await
            .expect("chart column")
            .rectangle()
            .await
            .expect("box");
        let (tx, ty, _, _) = client
            .find(Locator::Css(".col-tables"))
            .await
            .expect("tables column")
            .rectangle()
            .await
            .expect("box");
        assert!(
            tx >= cx + cw,
            "tables right of the chart ({tx} vs {cx} + {cw})"
        );
        assert!((ty - cy).abs() < 1.0, "side by side ({ty} vs {cy})");
        assert_no_sideways_scroll(&client).await;
        let view = js_f64(&client, "return document.documentElement.clientWidth").await;
        assert_eq!(view, 1400.0, "the viewport asked for");

        // A screenshot with the details of the worst CRS point open.
        let worst = c
            .series
            .iter()
            .filter(|q| q.crs.floor().is_some())
            .enumerate()
            .max_by_key(|(_, q)| q.crs.floor())
            .map(|(n, _)| n)
            .expect("a CRS point");
        point(&client, Syndrome::Crs, worst)
            .await
            .click()
            .await
            .expect("click");
        client
            .execute("window.scrollTo(0, 0)", vec![])
            .await
            .expect("scroll");
        screenshot(&client, "app-1400.png").await;
    })
    .await;
    server.stop(true).await;
}

/// The chart `id`'s smallest label as rendered, in px (its CSS font size times the chart's
/// scale), and the labels that overlap another or leave the chart.
async fn chart_labels(client: &Client, id: &str) -> (f64, Value) {
    let smallest = client
        .execute(
            "var svg = document.getElementById(arguments[0]); \
             var k = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width; \
             return Math.min.apply(null, Array.prototype.map.call(svg.querySelectorAll('text'), \
               function (t) { return parseFloat(getComputedStyle(t).fontSize) * k; }));",
            vec![json!(id)],
        )
        .await
        .expect("the script runs")
        .as_f64()
        .expect("a size");
    let collisions = client
        .execute(
            "var svg = document.getElementById(arguments[0]); \
             var box = svg.getBoundingClientRect(); \
             var t = Array.prototype.slice.call(svg.querySelectorAll('text')); \
             var r = t.map(function (e) { return e.getBoundingClientRect(); }); \
             var bad = []; \
             for (var i = 0; i < r.length; i++) { \
               if (r[i].left < box.left - 0.5 || r[i].right > box.right + 0.5 || \
                   r[i].top < box.top - 0.5 || r[i].bottom > box.bottom + 0.5) { \
                 bad.push('outside: ' + t[i].textContent); } \
               for (var j = i + 1; j < r.length; j++) { \
                 if (r[i].left < r[j].right && r[j].left < r[i].right && \
                     r[i].top < r[j].bottom && r[j].top < r[i].bottom) { \
                   bad.push(t[i].textContent + ' / ' + t[j].textContent); } } } \
             return bad;",
            vec![json!(id)],
        )
        .await
        .expect("the script runs");
    (smallest, collisions)
}

/// Asserts that every label of the narrow chart renders at 10 px or more (its CSS size
/// times the chart's scale, and the lane label's box) and that no label overlaps another or
/// leaves the chart.
async fn assert_narrow_chart_is_readable(client: &Client) {
    let (smallest, collisions) = chart_labels(client, "course-chart-narrow").await;
    assert!(smallest >= 10.0, "smallest label {smallest} px");
    assert_eq!(collisions, json!([]), "overlapping labels");
    let lane = js_f64(
        client,
        "return document.querySelector('#course-chart-narrow .lane-label') \
           .getBoundingClientRect().height;",
    )
    .await;
    assert!(lane >= 10.0, "lane label box {lane} px high");
}

#[tokio::test]
async fn at_400_px_the_page_has_no_horizontal_scroll_and_the_chart_fits_in_one_column() {
    let shown = demo_patient("demo-crs-4", Utc::now());
    let c = shown.course.clone().expect("a CAR-T course");
    let (url, server) = serve(page_for(&shown)).await;
    with_browser(400, 900, |client| async move {
        open_page(&client, &url).await;
        let view = js_f64(&client, "return document.documentElement.clientWidth").await;
        assert_eq!(view, 400.0, "the viewport asked for");
        let scroll = js_f64(&client, "return document.documentElement.scrollWidth").await;
        assert!(scroll <= view, "no horizontal scroll: {scroll} > {view}");
        // The narrow chart is the one displayed; the wide one is not, and its points take
        // no focus.
        assert_eq!(displayed_chart(&client).await, "course-chart-narrow");
        let wide = client
            .find(Locator::Id("course-chart"))
            .await
            .expect("the wide chart");
        assert!(!wide.is_displayed().await.expect("state"));
        let focusable = client
            .execute(
                "var p = document.querySelector('#course-chart .grade-point'); p.focus(); \
                 return document.activeElement === p;",
                vec![],
            )
            .await
            .expect("the script runs");
        assert_eq!(focusable, json!(false), "hidden points take no focus");
        let (_, _, w, h) = client
            .find(Locator::Id("course-chart-narrow"))
            .await
            .expect("the narrow chart")
            .rectangle()
            .await
            .expect("a box");
        assert!(w <= view && w > 300.0 && h > 100.0, "chart {w} × {h}");
        assert_narrow_chart_is_readable(&client).await;
        // One column: the tables below the chart.
        let (_, cy, _, ch) = client
            .find(Locator::Css(".col-chart"))
            .await
            .expect("chart column")
            .rectangle()
            .await
            .expect("box");
        let (_, ty, _, _) = client
            .find(Locator::Css(".col-tables"))
            .await
            .expect("tables column")
            .rectangle()
            .await
            .expect("box");
        assert!(ty >= cy + ch, "tables below the chart");
        // ICANS is not assessable (ICE not performed while intubated): a hatched band, no
        // ICANS point, and the table says so.
        assert_eq!(graded_points(&c, Syndrome::Icans), 0);
        let icans_points = client
            .find_all(Locator::Css(
                "#course-chart-narrow .grade-point[data-syndrome=\"icans\"]",
            ))
            .await
            .expect("points");
        assert!(icans_points.is_empty());
        let bands = client
            .find_all(Locator::Css("#course-chart-narrow .gap-band.icans"))
            .await
            .expect("bands");
        assert_eq!(bands.len(), c.icans.not_assessable.len());
        assert!(!bands.is_empty());
        let now_icans = client
            .find(Locator::Id("now-icans"))
            .await
            .expect("tile")
            .text()
            .await
            .expect("text");
        assert!(now_icans.contains("not assessable"), "{now_icans}");
        // Tapping the band shows it as not assessable, never a grade.
        bands[bands.len() - 1].click().await.expect("tap");
        let title = details_heading(&client).await;
        assert_eq!(title, "ICANS not assessable");
        let points = client
            .find_all(Locator::Css("#course-chart-narrow .grade-point"))
            .await
            .expect("points");
        assert_eq!(points.len(), graded_points(&c, Syndrome::Crs));
        // A point is at least 8 px across (tappable in the side panel).
        let (_, _, pw, _) = points[0].rectangle().await.expect("a box");
        assert!(pw >= 8.0, "point {pw} px across");
        let rows = client
            .find_all(Locator::Css("tr.episode-row"))
            .await
            .expect("rows");
        assert_eq!(rows.len(), c.crs.episodes.len() + c.icans.episodes.len());
        screenshot(&client, "app-400.png").await;
    })
    .await;
    server.stop(true).await;
}

#[tokio::test]
async fn a_patient_without_a_car_t_infusion_gets_a_page_that_says_so_and_no_chart() {
    let shown = demo_patient("demo-no-car-t", Utc::now());
    assert!(shown.course.is_none(), "no infusion on record");
    let (url, server) = serve(page_for(&shown)).await;
    with_browser(400, 900, |client| async move {
        client.goto(&url).await.expect("the page loads");
        let heading = client
            .find(Locator::Id("no-course-heading"))
            .await
            .expect("the notice")
            .text()
            .await
            .expect("text");
        assert_eq!(heading, "No CAR-T infusion on record");
        let charts = client.find_all(Locator::Css("svg")).await.expect("query");
        assert!(charts.is_empty(), "no chart that could read as no toxicity");
        assert_no_sideways_scroll(&client).await;
    })
    .await;
    server.stop(true).await;
}

#[tokio::test]
async fn a_typical_axi_cel_course_shows_its_episodes_doses_and_points_at_1400_px() {
    let shown = fixture_course("axi-cel-typical");
    let c = shown.course.clone().expect("a CAR-T course");
    assert!(c.crs.episodes.len() == 1 && c.icans.episodes.len() == 1);
    let (url, server) = serve(page_for(&shown)).await;
    with_browser(1400, 1000, |client| async move {
        open_page(&client, &url).await;
        assert_eq!(
            assert_chart_and_table_show(&client, &c).await,
            "course-chart"
        );
        // The tocilizumab row counts the doses of the course.
        let toci = client
            .find(Locator::Id("treatment-tocilizumab"))
            .await
            .expect("row")
            .text()
            .await
            .expect("text");
        let n = c.treatment.tocilizumab.len();
        assert!(toci.contains(&format!("{n} doses")), "{toci}");
        // The wide chart's labels do not overlap (two columns: it is drawn smaller here).
        let (_, collisions) = chart_labels(&client, "course-chart").await;
        assert_eq!(collisions, json!([]), "overlapping labels");
        assert_no_sideways_scroll(&client).await;
        // Open the worst ICANS point for the screenshot.
        tap_worst_point(&client, &c, Syndrome::Icans).await;
        client
            .execute("window.scrollTo(0, 0)", vec![])
            .await
            .expect("scroll");
        let png = screenshot(&client, "app-axi-cel-1400.png").await;
        if std::env::var("UPDATE_SCREENSHOT").is_ok() {
            let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/app-screenshot.png");
            std::fs::copy(&png, &docs).expect("docs/app-screenshot.png written");
        }
    })
    .await;
    server.stop(true).await;
}

/// A side panel (issue 13 follow-up): the axi-cel course of several weeks at 400 px shows
/// the narrow chart with every point, labels of 10 px or more that do not overlap, and a tap
/// on a point opens its details.
#[tokio::test]
async fn a_typical_axi_cel_course_at_400_px_shows_the_narrow_chart_with_readable_labels_and_every_point()
 {
    let shown = fixture_course("axi-cel-typical");
    let c = shown.course.clone().expect("a CAR-T course");
    let (url, server) = serve(page_for(&shown)).await;
    with_browser(400, 900, |client| async move {
        open_page(&client, &url).await;
        assert_eq!(
            assert_chart_and_table_show(&client, &c).await,
            "course-chart-narrow"
        );
        assert_narrow_chart_is_readable(&client).await;
        let days = client
            .find_all(Locator::Css("#course-chart-narrow .day-label"))
            .await
            .expect("day labels");
        assert!(days.len() >= 2, "{} day labels", days.len());
        assert_no_sideways_scroll(&client).await;
        let worst = tap_worst_point(&client, &c, Syndrome::Crs).await;
        // The right arrow moves to the next CRS point of the narrow chart.
        let next = c
            .series
            .iter()
            .filter(|q| q.crs.floor().is_some())
            .nth(worst + 1)
            .expect("a later CRS point");
        client
            .active_element()
            .await
            .expect("focus")
            .send_keys(&Key::Right.to_string())
            .await
            .expect("keys");
        let focused = client.active_element().await.expect("focus");
        assert_eq!(
            focused.attr("data-time").await.expect("attr"),
            point(&client, Syndrome::Crs, worst + 1)
                .await
                .attr("data-time")
                .await
                .expect("attr")
        );
        let title = details_heading(&client).await;
        assert_eq!(title, details_title(Syndrome::Crs, next.crs));
        let chart = client
            .find(Locator::Id("course-chart-narrow"))
            .await
            .expect("the narrow chart");
        chart
            .screenshot()
            .await
            .map(|png| {
                let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
                std::fs::create_dir_all(&dir).expect("target/browser");
                std::fs::write(dir.join("app-axi-cel-400-chart.png"), png).expect("written");
            })
            .expect("a screenshot of the chart");
        screenshot(&client, "app-axi-cel-400.png").await;
    })
    .await;
    server.stop(true).await;
}

/// From 820 px the page shows the wide chart, and there (one column, at least 740 px wide)
/// its labels render at 10 px or more without overlapping; the narrow one is not displayed.
#[tokio::test]
async fn at_840_px_the_wide_chart_is_shown_and_its_labels_render_at_10_px_or_more_without_overlap()
{
    let shown = fixture_course("axi-cel-typical");
    let c = shown.course.clone().expect("a CAR-T course");
    let (url, server) = serve(page_for(&shown)).await;
    with_browser(840, 900, |client| async move {
        open_page(&client, &url).await;
        assert_eq!(
            assert_chart_and_table_show(&client, &c).await,
            "course-chart"
        );
        let (smallest, collisions) = chart_labels(&client, "course-chart").await;
        assert!(smallest >= 10.0, "smallest label {smallest} px");
        assert_eq!(collisions, json!([]), "overlapping labels");
        screenshot(&client, "app-axi-cel-840.png").await;
    })
    .await;
    server.stop(true).await;
}

/// The whole flow in the browser (issue 13 "Done when"): the demo EHR shows the patient's
/// grading card, a click on its "CRS/ICANS course" link runs the SMART EHR launch (demo EHR
/// → `/app/launch` → the demo authorization server → `/app/callback`, every redirect
/// followed by Chromium, the launch cookie kept by it) and the app draws the course the
/// service computes from the demo FHIR server: as many grade points and episode rows as
/// that patient's course has (computed here from the same demo resources).
#[tokio::test]
async fn a_click_on_the_card_link_in_the_demo_ehr_launches_the_app_and_draws_the_patients_course() {
    let id = "demo-tocilizumab-history";
    let app = crate::helpers::spawn_app_with(|s| s.demo = true).await;
    let ehr = format!("{}/demo/ehr", app.address);
    let address = app.address.clone();
    with_browser(1400, 1000, |client| async move {
        client.goto(&ehr).await.expect("the demo EHR loads");
        let link = client
            .find(Locator::Id(&format!("app-link-{id}")))
            .await
            .expect("the grading card's app link");
        assert_eq!(link.text().await.expect("text"), "CRS/ICANS course");
        link.click().await.expect("click");
        client
            .wait()
            .for_element(Locator::Css("html[data-app=\"ready\"]"))
            .await
            .expect("the app page loaded and its script ran under the CSP");
        let at = client.current_url().await.expect("a URL");
        assert!(
            at.as_str().starts_with(&format!("{address}/app/callback?")),
            "the launch ended on the app's callback: {at}"
        );
        // The expected course: the same demo resources (generated at the minute the app
        // read them, `demo::now`, the minute its "As of" shows), through the adapter,
        // graded within that minute.
        let as_of = client
            .find(Locator::Id("as-of"))
            .await
            .expect("the As of time")
            .text()
            .await
            .expect("text");
        let minute = chrono::NaiveDateTime::parse_from_str(
            as_of.get(..16).expect("YYYY-MM-DD HH:MM"),
            "%Y-%m-%d %H:%M",
        )
        .unwrap_or_else(|e| panic!("{as_of}: {e}"))
        .and_utc();
        let c = demo_patient_at(id, minute, minute + chrono::TimeDelta::seconds(30))
            .course
            .expect("a CAR-T course");
        assert!(
            !c.crs.episodes.is_empty(),
            "the demo patient has a CRS episode to show"
        );
        assert_eq!(
            assert_chart_and_table_show(&client, &c).await,
            "course-chart"
        );
        // A tap on a CRS point opens its details.
        tap_worst_point(&client, &c, Syndrome::Crs).await;
        screenshot(&client, "app-demo-ehr-launch-1400.png").await;
    })
    .await;
    app.stop().await;
}
