//! The SMART app (issue 13): the card links, the launch from the demo EHR through the demo
//! authorization server to the course page, and every refusal on the way. Redirects are
//! followed by hand, with the launch cookie kept as a browser would.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, patient_view, spawn_app_with};
use crs_cds::config::AppLinks;

/// A test cookie key (base64 of 32 bytes; only tests use it).
const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A client that follows nothing and keeps the launch cookie.
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
    /// The last `Set-Cookie` of the launch cookie, attributes included.
    last_set_cookie: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            cookie: None,
            last_set_cookie: None,
        }
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut r = self.client.get(url);
        if let Some(c) = &self.cookie {
            r = r.header("Cookie", c.clone());
        }
        let res = r.send().await.expect("sent");
        for h in res.headers().get_all("set-cookie") {
            let text = h.to_str().expect("ASCII").to_string();
            let pair = text.split(';').next().unwrap_or_default().to_string();
            if pair.starts_with("crs_cds_launch=") {
                let removed = text.to_ascii_lowercase().contains("max-age=0");
                self.cookie = (!removed).then_some(pair);
                self.last_set_cookie = Some(text);
            }
        }
        res
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_string()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).expect("an absolute URL");
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn demo_app() -> TestApp {
    spawn_app_with(|s| s.demo = true).await
}

/// Runs the demo EHR launch up to the authorization server's redirect to the callback.
async fn launch_until_callback(app: &TestApp, b: &mut Browser, patient: &str) -> String {
    let ehr = b
        .get(&format!(
            "{}/demo/ehr/launch?patient={patient}",
            app.address
        ))
        .await;
    assert_eq!(ehr.status(), 302);
    let app_launch = location(&ehr);
    assert!(app_launch.starts_with(&format!("{}/app/launch?", app.address)));
    let launch = b.get(&app_launch).await;
    assert_eq!(launch.status(), 302);
    let authorize = location(&launch);
    assert!(authorize.starts_with(&format!("{}/demo/auth/authorize?", app.address)));
    let auth = b.get(&authorize).await;
    assert_eq!(auth.status(), 302);
    let callback = location(&auth);
    assert!(callback.starts_with(&format!("{}/app/callback?", app.address)));
    callback
}

fn assert_security_headers(res: &reqwest::Response) {
    let h = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(
        h("content-security-policy"),
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
    );
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "no-referrer");
}

#[tokio::test]
async fn the_demo_ehr_link_runs_the_whole_smart_launch_to_the_course_chart() {
    let app = demo_app().await;
    let mut b = Browser::new();
    let ehr = b.get(&format!("{}/demo/ehr", app.address)).await;
    assert_eq!(ehr.status(), 200);
    let page = ehr.text().await.expect("text");
    assert!(
        page.contains("id=\"app-link-demo-crs-2\"")
            && page.contains("href=\"/demo/ehr/launch?patient=demo-crs-2\">CRS/ICANS course</a>"),
        "the grading card of demo-crs-2 carries the smart link"
    );
    assert!(
        !page.contains("id=\"app-link-demo-no-car-t\""),
        "no link without a CAR-T infusion"
    );

    let ehr_launch = b
        .get(&format!(
            "{}/demo/ehr/launch?patient=demo-crs-2",
            app.address
        ))
        .await;
    let app_launch = location(&ehr_launch);
    let iss = format!("{}/demo/fhir", app.address);
    assert_eq!(
        query_param(&app_launch, "iss").as_deref(),
        Some(iss.as_str())
    );
    let launch_id = query_param(&app_launch, "launch").expect("a launch id");

    let launch = b.get(&app_launch).await;
    assert_eq!(launch.status(), 302);
    assert_security_headers(&launch);
    let authorize = location(&launch);
    let p = |n| query_param(&authorize, n);
    assert_eq!(p("response_type").as_deref(), Some("code"));
    assert_eq!(p("client_id").as_deref(), Some("crs-cds"));
    assert_eq!(
        p("redirect_uri"),
        Some(format!("{}/app/callback", app.address))
    );
    assert_eq!(
        p("scope").as_deref(),
        Some(
            "launch patient/Observation.rs patient/MedicationAdministration.rs patient/MedicationRequest.rs patient/Procedure.rs patient/Patient.r openid fhirUser"
        )
    );
    assert_eq!(p("aud"), Some(iss.clone()));
    assert_eq!(p("launch"), Some(launch_id));
    assert_eq!(p("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(p("code_challenge").map(|c| c.len()), Some(43));
    let state = p("state").expect("a state");
    let set = b.last_set_cookie.clone().expect("the launch cookie is set");
    let attrs = set.to_ascii_lowercase();
    assert!(attrs.contains("httponly"), "{set}");
    assert!(attrs.contains("samesite=lax"), "{set}");
    assert!(attrs.contains("max-age=600"), "{set}");
    assert!(attrs.contains("path=/app"), "{set}");
    assert!(
        !attrs.contains("secure"),
        "plain http on loopback: no Secure attribute (the demo runs there): {set}"
    );

    let auth = b.get(&authorize).await;
    let callback_url = location(&auth);
    assert_eq!(query_param(&callback_url, "state"), Some(state));
    let callback = b.get(&callback_url).await;
    assert_eq!(callback.status(), 200);
    assert_security_headers(&callback);
    assert!(
        b.cookie.is_none(),
        "the launch cookie is cleared: {:?}",
        b.last_set_cookie
    );
    let html = callback.text().await.expect("text");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<svg"), "the course chart is on the page");

    // The page's files are served, with the same headers.
    let css = b.get(&format!("{}/app/static/app.css", app.address)).await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/css")
    );
    assert_security_headers(&css);
    let js = b.get(&format!("{}/app/static/app.js", app.address)).await;
    assert!(
        js.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/javascript")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_standalone_launch_from_the_absolute_link_lets_the_user_pick_the_patient() {
    let app = demo_app().await;
    let mut b = Browser::new();
    // The absolute link's URL, without iss: the one allowed issuer (the demo FHIR base).
    let launch = b.get(&format!("{}/app/launch", app.address)).await;
    assert_eq!(launch.status(), 302);
    let authorize = location(&launch);
    assert_eq!(
        query_param(&authorize, "aud"),
        Some(format!("{}/demo/fhir", app.address))
    );
    assert!(query_param(&authorize, "launch").is_none());
    assert!(
        query_param(&authorize, "scope").is_some_and(|s| s.starts_with("launch/patient ")),
        "{authorize}"
    );
    // The demo authorization server never picks a patient silently: a picker.
    let picker = b.get(&authorize).await;
    assert_eq!(picker.status(), 200);
    let html = picker.text().await.expect("text");
    let href = html
        .split("href=\"")
        .skip(1)
        .filter_map(|h| h.split('"').next())
        .find(|h| h.contains("patient=demo-crs-3"))
        .expect("a link for demo-crs-3")
        .replace("&amp;", "&");
    let chosen = b.get(&format!("{}{href}", app.address)).await;
    assert_eq!(chosen.status(), 302);
    let page = b.get(&location(&chosen)).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("text").contains("<svg"));
    app.stop().await;
}

/// The app honours `server.max_parsed_entries` like a hook call (issue 10): over it no
/// course is drawn from part of the record; the page says so.
#[tokio::test]
async fn over_the_parsed_entry_cap_the_app_draws_no_course_and_says_why() {
    let app = spawn_app_with(|s| {
        s.demo = true;
        s.server.limits.max_parsed_entries = 1;
    })
    .await;
    let mut b = Browser::new();
    let callback = launch_until_callback(&app, &mut b, "demo-crs-3").await;
    let res = b.get(&callback).await;
    assert_eq!(res.status(), 422);
    assert_security_headers(&res);
    let html = res.text().await.expect("text");
    assert!(html.contains("too large to draw"), "{html}");
    assert!(html.contains("server.max_parsed_entries"), "{html}");
    assert!(!html.contains("<svg"), "no course from part of the record");
    app.stop().await;
}

#[tokio::test]
async fn a_callback_whose_state_differs_from_the_cookie_is_refused() {
    let app = demo_app().await;
    let mut b = Browser::new();
    let callback = launch_until_callback(&app, &mut b, "demo-crs-3").await;
    let code = query_param(&callback, "code").expect("a code");
    let forged = format!(
        "{}/app/callback?code={code}&state=another-state",
        app.address
    );
    let res = b.get(&forged).await;
    assert_eq!(res.status(), 400);
    assert_security_headers(&res);
    let html = res.text().await.expect("text");
    assert!(html.contains("does not match this launch"), "{html}");
    assert!(!html.contains("<svg"));
    app.stop().await;
}

#[tokio::test]
async fn a_callback_without_the_launch_cookie_is_refused() {
    let app = demo_app().await;
    let mut b = Browser::new();
    let callback = launch_until_callback(&app, &mut b, "demo-crs-3").await;
    let mut other = Browser::new();
    let res = other.get(&callback).await;
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .expect("text")
            .contains("could not be finished")
    );
    app.stop().await;
}

#[tokio::test]
async fn an_issuer_not_on_the_allow_list_is_refused_before_any_request_goes_out() {
    let ehr = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&ehr)
        .await;
    let app = demo_app().await;
    let mut b = Browser::new();
    for iss in [
        ehr.uri(),
        // A prefix of an allowed issuer, or one with a path below it, is another issuer.
        format!("{}/demo/fhir.evil", app.address),
        format!("{}/demo", app.address),
    ] {
        let url = format!(
            "{}/app/launch?iss={}&launch=x",
            app.address,
            urlencode(&iss)
        );
        let res = b.get(&url).await;
        assert_eq!(res.status(), 400, "{iss}");
        assert!(res.headers().get("location").is_none(), "no redirect");
        assert!(b.cookie.is_none(), "no launch cookie");
        assert!(
            res.text()
                .await
                .expect("text")
                .contains("list of allowed servers")
        );
    }
    let received = ehr.received_requests().await.expect("recording is on");
    assert!(
        received.is_empty(),
        "no request to the issuer: {received:?}"
    );
    app.stop().await;
    // Without iss and with two allowed issuers: a page, not a guess.
    let two = spawn_app_with(|s| {
        s.demo = true;
        s.app.allowed_issuers = vec!["https://ehr.example.org/fhir".into()];
    })
    .await;
    let res = b.get(&format!("{}/app/launch", two.address)).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    two.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An EHR (wiremock) whose SMART configuration points at itself.
async fn mock_ehr(token: ResponseTemplate) -> MockServer {
    let ehr = MockServer::start().await;
    let base = ehr.uri();
    Mock::given(method("GET"))
        .and(path("/fhir/.well-known/smart-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "code_challenge_methods_supported": ["S256"],
            "capabilities": ["launch-ehr", "client-public"],
        })))
        .mount(&ehr)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token)
        .mount(&ehr)
        .await;
    ehr
}

async fn production_app(iss: &str) -> TestApp {
    let iss = iss.to_string();
    spawn_app_with(move |s| {
        s.server.public_base_url = Some("https://cds.example.org".into());
        s.app.allowed_issuers = vec![iss];
        s.app.cookie_key = Some(TEST_KEY.to_string().into());
    })
    .await
}

#[tokio::test]
async fn a_token_endpoint_that_refuses_the_code_gives_an_error_page_and_reads_no_data() {
    let ehr =
        mock_ehr(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}))).await;
    let iss = format!("{}/fhir", ehr.uri());
    let app = production_app(&iss).await;
    let mut b = Browser::new();
    let launch = b
        .get(&format!(
            "{}/app/launch?iss={}&launch=L1",
            app.address,
            urlencode(&iss)
        ))
        .await;
    assert_eq!(launch.status(), 302);
    let authorize = location(&launch);
    assert!(authorize.starts_with(&format!("{}/authorize?", ehr.uri())));
    assert_eq!(
        query_param(&authorize, "redirect_uri").as_deref(),
        Some("https://cds.example.org/app/callback")
    );
    let set = b.last_set_cookie.clone().expect("a launch cookie");
    assert!(
        set.to_ascii_lowercase().contains("secure"),
        "an https base: Secure cookie: {set}"
    );
    let state = query_param(&authorize, "state").expect("a state");
    let res = b
        .get(&format!(
            "{}/app/callback?code=C1&state={}",
            app.address,
            urlencode(&state)
        ))
        .await;
    assert_eq!(res.status(), 502);
    assert_security_headers(&res);
    assert!(
        res.text()
            .await
            .expect("text")
            .contains("The EHR refused the sign-in")
    );
    let received = ehr.received_requests().await.expect("recording is on");
    let token_calls: Vec<_> = received
        .iter()
        .filter(|r| r.url.path() == "/token")
        .collect();
    assert_eq!(token_calls.len(), 1);
    let form = String::from_utf8_lossy(&token_calls[0].body).into_owned();
    assert!(form.contains("grant_type=authorization_code"), "{form}");
    assert!(form.contains("code=C1"), "{form}");
    assert!(form.contains("code_verifier="), "{form}");
    assert!(form.contains("client_id=crs-cds"), "{form}");
    assert!(
        received
            .iter()
            .all(|r| !r.url.path().starts_with("/fhir/Observation")),
        "no FHIR data read without a token"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_fhir_server_that_fails_after_the_sign_in_gives_an_error_page_never_a_course() {
    let ehr = mock_ehr(ResponseTemplate::new(200).set_body_json(json!({
        "access_token": "T", "token_type": "Bearer", "expires_in": 300, "scope": "launch",
        "patient": "p1",
    })))
    .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&ehr)
        .await;
    let iss = format!("{}/fhir", ehr.uri());
    let app = production_app(&iss).await;
    let mut b = Browser::new();
    let launch = b
        .get(&format!(
            "{}/app/launch?iss={}&launch=L1",
            app.address,
            urlencode(&iss)
        ))
        .await;
    let state = query_param(&location(&launch), "state").expect("a state");
    let res = b
        .get(&format!(
            "{}/app/callback?code=C1&state={}",
            app.address,
            urlencode(&state)
        ))
        .await;
    assert_eq!(res.status(), 502);
    let html = res.text().await.expect("text");
    assert!(html.contains("could not be read"), "{html}");
    assert!(!html.contains("<svg"), "no chart from an incomplete record");
    app.stop().await;
}

#[tokio::test]
async fn without_a_cookie_key_outside_demo_mode_the_app_answers_503() {
    let app = spawn_app_with(|s| {
        s.server.public_base_url = Some("https://cds.example.org".into());
        s.app.allowed_issuers = vec!["https://ehr.example.org/fhir".into()];
    })
    .await;
    let mut b = Browser::new();
    let res = b
        .get(&format!(
            "{}/app/launch?iss=https%3A%2F%2Fehr.example.org%2Ffhir&launch=x",
            app.address
        ))
        .await;
    assert_eq!(res.status(), 503);
    assert_security_headers(&res);
    assert!(
        res.text()
            .await
            .expect("text")
            .contains("CRS_CDS_APP_COOKIE_KEY")
    );
    app.stop().await;
}

/// An encrypted launch cookie made with the test key, as `/app/launch` would make it.
fn crafted_cookie(state: &str, iss: &str, token_endpoint: &str, age_secs: i64) -> String {
    use actix_web::cookie::{Cookie, CookieJar, Key};
    let bytes = crs_cds::config::decode_cookie_key(TEST_KEY).expect("base64");
    let key = Key::derive_from(&bytes);
    let value = serde_json::to_string(&crs_cds::http::routes::app::LaunchCookie {
        state: state.into(),
        verifier: "v".repeat(43),
        iss: iss.into(),
        token_endpoint: token_endpoint.into(),
        issued_at: chrono::Utc::now().timestamp() - age_secs,
    })
    .expect("JSON");
    let mut jar = CookieJar::new();
    jar.private_mut(&key)
        .add(Cookie::new("crs_cds_launch", value));
    let c = jar.get("crs_cds_launch").expect("added");
    format!("crs_cds_launch={}", c.value())
}

#[tokio::test]
async fn a_launch_cookie_older_than_ten_minutes_is_refused_and_one_just_younger_is_used() {
    // The token endpoint refuses: a cookie that passes the age check gets that far (502);
    // an expired one stops before (400).
    let ehr =
        mock_ehr(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}))).await;
    let iss = format!("{}/fhir", ehr.uri());
    let token = format!("{}/token", ehr.uri());
    let app = production_app(&iss).await;
    let client = Browser::new().client;
    let call = |cookie: String| {
        client
            .get(format!("{}/app/callback?code=C&state=S", app.address))
            .header("Cookie", cookie)
            .send()
    };
    let old = call(crafted_cookie("S", &iss, &token, 601))
        .await
        .expect("sent");
    assert_eq!(old.status(), 400);
    assert!(old.text().await.expect("text").contains("took too long"));
    let young = call(crafted_cookie("S", &iss, &token, 590))
        .await
        .expect("sent");
    assert_eq!(young.status(), 502, "past the age and state checks");
    app.stop().await;
}

#[tokio::test]
async fn the_launch_cookie_is_encrypted_and_an_altered_one_is_refused() {
    let app = demo_app().await;
    let mut b = Browser::new();
    let callback = launch_until_callback(&app, &mut b, "demo-crs-3").await;
    let state = query_param(&callback, "state").expect("a state");
    let cookie = b.cookie.clone().expect("a launch cookie");
    let value = cookie.trim_start_matches("crs_cds_launch=");
    // Neither the state, the issuer nor any JSON shows, even after base64 decoding.
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(
            value
                .replace("%2B", "+")
                .replace("%2F", "/")
                .replace("%3D", "="),
        )
        .unwrap_or_default();
    let decoded = String::from_utf8_lossy(&decoded);
    for leak in [state.as_str(), "demo/fhir", "verifier", "issued_at"] {
        assert!(!value.contains(leak), "{leak} readable in the cookie");
        assert!(
            !decoded.contains(leak),
            "{leak} readable in the decoded cookie"
        );
    }
    // One character changed: the AEAD tag fails, the launch is refused.
    let mut chars: Vec<char> = value.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let altered: String = chars.into_iter().collect();
    b.cookie = Some(format!("crs_cds_launch={altered}"));
    let res = b.get(&callback).await;
    assert_eq!(res.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn the_demo_token_endpoint_refuses_a_wrong_verifier_and_a_second_use() {
    let app = demo_app().await;
    let mut b = Browser::new();
    let base = app.address.clone();
    let fhir = format!("{base}/demo/fhir");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // RFC 7636 appendix B
    let redirect = format!("{base}/app/callback");
    let http = b.client.clone();
    let code_for = |b: &Browser, launch: String| {
        let url = format!(
            "{base}/demo/auth/authorize?response_type=code&client_id=crs-cds&redirect_uri={}&scope=launch+openid&state=s1&aud={}&launch={}&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(&redirect),
            urlencode(&fhir),
            urlencode(&launch)
        );
        let client = b.client.clone();
        async move {
            let res = client.get(url).send().await.expect("sent");
            assert_eq!(res.status(), 302);
            query_param(&location(&res), "code").expect("a code")
        }
    };
    let ehr = b
        .get(&format!("{base}/demo/ehr/launch?patient=demo-crs-1"))
        .await;
    let launch = query_param(&location(&ehr), "launch").expect("a launch id");
    let exchange = |code: String, v: &'static str| {
        let client = http.clone();
        let redirect = redirect.clone();
        let url = format!("{base}/demo/auth/token");
        async move {
            client
                .post(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=authorization_code&code={}&redirect_uri={}&client_id=crs-cds&code_verifier={v}",
                    urlencode(&code),
                    urlencode(&redirect)
                ))
                .send()
                .await
                .expect("sent")
        }
    };
    let wrong = exchange(
        code_for(&b, launch.clone()).await,
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
    )
    .await;
    assert_eq!(wrong.status(), 400);
    let body: Value = wrong.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_grant");

    let code = code_for(&b, launch).await;
    let good = exchange(code.clone(), verifier).await;
    assert_eq!(good.status(), 200);
    assert_eq!(good.headers()["cache-control"], "no-store");
    let token: Value = good.json().await.expect("JSON");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["patient"], "demo-crs-1");
    assert_eq!(token["appContext"], "course");
    assert!(
        token["access_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 16)
    );
    let again = exchange(code, verifier).await;
    assert_eq!(again.status(), 400, "a code is used once");
    app.stop().await;
}

#[tokio::test]
async fn the_demo_authorization_server_refuses_a_foreign_redirect_uri_and_a_plain_challenge() {
    let app = demo_app().await;
    let b = Browser::new();
    let base = app.address.clone();
    let fhir = urlencode(&format!("{base}/demo/fhir"));
    let evil = b
        .client
        .get(format!(
            "{base}/demo/auth/authorize?response_type=code&client_id=crs-cds&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=launch&state=s&aud={fhir}&launch=x&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(evil.status(), 400);
    assert!(
        evil.headers().get("location").is_none(),
        "never redirected elsewhere"
    );
    let redirect = urlencode(&format!("{base}/app/callback"));
    let plain = b
        .client
        .get(format!(
            "{base}/demo/auth/authorize?response_type=code&client_id=crs-cds&redirect_uri={redirect}&scope=launch&state=s&aud={fhir}&launch=x&code_challenge=abc&code_challenge_method=plain"
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(plain.status(), 302);
    let back = location(&plain);
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(query_param(&back, "code").is_none());
    // The smart-configuration advertises S256 only, and the endpoints on this server.
    let config: Value = b
        .client
        .get(format!("{base}/demo/fhir/.well-known/smart-configuration"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(config["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(config["token_endpoint"], format!("{base}/demo/auth/token"));
    for c in [
        "launch-ehr",
        "context-ehr-patient",
        "client-public",
        "permission-v2",
    ] {
        assert!(
            config["capabilities"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(c))),
            "{c}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_demo_ehr_launch_redirects_only_to_this_servers_app() {
    let app = demo_app().await;
    let mut b = Browser::new();
    let res = b
        .get(&format!(
            "{}/demo/ehr/launch?patient=demo-crs-1&url=https%3A%2F%2Fevil.example",
            app.address
        ))
        .await;
    assert!(location(&res).starts_with(&format!("{}/app/launch?iss=", app.address)));
    let unknown = b
        .get(&format!("{}/demo/ehr/launch?patient=someone", app.address))
        .await;
    assert_eq!(unknown.status(), 400);
    app.stop().await;
}

/// The grading card's links for demo-crs-2, from an app with `links` as its setting and
/// `public_base` (None: demo mode's own address).
async fn grading_card_links(setting: AppLinks) -> (Value, Vec<Value>) {
    let app = spawn_app_with(move |s| {
        s.demo = true;
        s.cards.app_links = setting;
    })
    .await;
    let mut call = patient_view("demo-crs-2", None);
    call["fhirServer"] = json!(format!("{}/demo/fhir", app.address));
    let body: Value = app
        .call("crs-icans-grading", &call)
        .await
        .json()
        .await
        .expect("JSON");
    let address = app.address.clone();
    app.stop().await;
    let cards = body["cards"].as_array().cloned().unwrap_or_default();
    let grading = cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "crs-icans-grade")
        .cloned()
        .expect("a grading card");
    let others: Vec<Value> = cards
        .into_iter()
        .filter(|c| c["source"]["topic"]["code"] != "crs-icans-grade")
        .collect();
    (
        json!({ "links": grading.get("links").cloned(), "address": address }),
        others,
    )
}

#[tokio::test]
async fn the_grading_card_carries_the_app_link_the_setting_asks_for() {
    let (smart, others) = grading_card_links(AppLinks::Smart).await;
    let url = format!("{}/app/launch", smart["address"].as_str().expect("text"));
    assert_eq!(
        smart["links"],
        json!([{ "label": "CRS/ICANS course", "url": url, "type": "smart", "appContext": "course" }])
    );
    assert!(
        others.iter().all(|c| c.get("links").is_none()),
        "only the grading card"
    );

    let (absolute, _) = grading_card_links(AppLinks::Absolute).await;
    let url = format!("{}/app/launch", absolute["address"].as_str().expect("text"));
    assert_eq!(
        absolute["links"],
        json!([{ "label": "CRS/ICANS course", "url": url, "type": "absolute" }])
    );
    let (both, _) = grading_card_links(AppLinks::Both).await;
    let kinds: Vec<&str> = both["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["type"].as_str())
        .collect();
    assert_eq!(kinds, ["smart", "absolute"]);
    let (none, _) = grading_card_links(AppLinks::None).await;
    assert_eq!(none["links"], Value::Null, "no links key at all");
}

#[tokio::test]
async fn without_a_public_base_url_outside_demo_mode_the_card_has_no_link() {
    let data = demo_app().await;
    let app = spawn_app_with(|_| {}).await;
    let mut call = patient_view("demo-crs-2", None);
    call["fhirServer"] = json!(format!("{}/demo/fhir", data.address));
    let body: Value = app
        .call("crs-icans-grading", &call)
        .await
        .json()
        .await
        .expect("JSON");
    let cards = body["cards"].as_array().expect("cards");
    assert!(!cards.is_empty());
    assert!(cards.iter().all(|c| c.get("links").is_none()), "{body:#}");
    // With a public base URL: the smart link on it.
    let linked = spawn_app_with(|s| {
        s.server.public_base_url = Some("https://cds.example.org".into());
    })
    .await;
    let body: Value = linked
        .call("crs-icans-grading", &call)
        .await
        .json()
        .await
        .expect("JSON");
    let grading = body["cards"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["source"]["topic"]["code"] == "crs-icans-grade")
        })
        .cloned()
        .expect("a grading card");
    assert_eq!(
        grading["links"][0]["url"],
        "https://cds.example.org/app/launch"
    );
    app.stop().await;
    linked.stop().await;
    data.stop().await;
}

#[tokio::test]
async fn without_demo_mode_the_demo_ehr_and_authorization_server_are_not_served() {
    let app = spawn_app_with(|_| {}).await;
    for path in [
        "/demo/ehr",
        "/demo/ehr/launch?patient=demo-crs-2",
        "/demo/auth/authorize",
        "/demo/fhir/.well-known/smart-configuration",
    ] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
    let token = app
        .client
        .post(format!("{}/demo/auth/token", app.address))
        .body("grant_type=authorization_code")
        .send()
        .await
        .expect("sent");
    assert_eq!(token.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_patient_named_in_the_launch_url_is_never_used_the_sign_in_chooses() {
    // The Sandbox opens smart links on open FHIR servers as `?fhirServiceUrl&patientId`.
    let app = demo_app().await;
    let mut b = Browser::new();
    let res = b
        .get(&format!(
            "{}/app/launch?fhirServiceUrl={}&patientId=demo-crs-4",
            app.address,
            urlencode(&format!("{}/demo/fhir", app.address))
        ))
        .await;
    assert_eq!(res.status(), 302);
    let authorize = location(&res);
    assert!(!authorize.contains("demo-crs-4"), "{authorize}");
    assert!(query_param(&authorize, "launch").is_none());
    // The demo authorization server asks; nothing was chosen from the URL.
    let picker = b.get(&authorize).await;
    assert_eq!(picker.status(), 200);
    assert!(
        picker
            .text()
            .await
            .expect("text")
            .contains("choose a synthetic patient")
    );
    app.stop().await;
}
