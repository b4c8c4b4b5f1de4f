//! Signing a browser in, against the real server on a real ledger. With read tokens required,
//! a page without credentials redirects to `/login?next=…` while `/v1` keeps its JSON 401;
//! `POST /login` with a good token (from `assay token create` or the operator's file) sets an
//! `HttpOnly; SameSite=Strict` cookie that then authorizes pages, `/v1` and the live stream;
//! a wrong token is a 401 with no cookie; `next` only leads to local paths; a revoked token's
//! cookie is sent back to `/login`; `POST /logout` clears the cookie; bad forms are 4xx. On an
//! open loopback server nothing changes and `/login` still renders.

use crate::support::http as app;

use std::time::Duration;

use app::{App, assay_cli as assay, spawn_app, spawn_app_with};
use assay::http::ServeOptions;
use reqwest::StatusCode;
use reqwest::header::{CONNECTION, CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use scraper::{Html, Selector};

const FILE_TOKEN: &str = "operator-file-token-0123456789";
const FORM: &str = "application/x-www-form-urlencoded";

/// A token from `assay token create`.
fn create_token(app: &App, name: &str) -> String {
    let (code, token, err) = assay(&["token", "create", "--db", &app.db, "--name", name]);
    assert_eq!(code, 0, "{err}");
    token.trim().to_owned()
}

/// A server on loopback that requires read tokens, with one operator file token.
async fn locked_app() -> App {
    spawn_app_with(ServeOptions {
        require_read_token: true,
        read_tokens: vec![FILE_TOKEN.to_owned()],
        stream_token_check: Duration::from_millis(200),
        ..ServeOptions::default()
    })
    .await
}

/// A client that shows redirects instead of following them, and keeps no cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client")
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn location(&self) -> &str {
        self.header(LOCATION).unwrap_or_else(|| panic!("no Location: {} {}", self.status, self.body))
    }

    /// `name=value` of the Set-Cookie header.
    fn cookie(&self) -> String {
        let set = self.header(SET_COOKIE).unwrap_or_else(|| panic!("no Set-Cookie: {}", self.status));
        set.split(';').next().expect("a cookie").trim().to_owned()
    }

    /// The body as HTML that parses without errors.
    fn html(&self) -> Html {
        let ct = self.header(CONTENT_TYPE).unwrap_or("");
        assert!(ct.starts_with("text/html"), "{} {ct}: {}", self.status, self.body);
        assert!(self.body.starts_with("<!DOCTYPE html>"), "no doctype");
        let html = Html::parse_document(&self.body);
        assert!(html.errors.is_empty(), "HTML parse errors {:?}", html.errors);
        html
    }
}

async fn reply(r: reqwest::RequestBuilder) -> Reply {
    reply_unless_cut(r).await.expect("a response, not a connection cut while the body was sent")
}

/// The reply; or None when the server answered and closed the connection before the client
/// finished sending the body (it refuses an over-long body by its length, without reading it,
/// and then the client's write meets a closed socket), which is a refusal too.
async fn reply_unless_cut(r: reqwest::RequestBuilder) -> Option<Reply> {
    let r = match r.send().await {
        Ok(r) => r,
        Err(e) if e.is_request() && cut_while_sending(&e) => return None,
        Err(e) => panic!("a response: {e:?}"),
    };
    let status = r.status();
    let headers = r.headers().clone();
    Some(Reply { status, headers, body: r.text().await.expect("a body") })
}

/// Whether the error's causes include a broken pipe or a reset connection.
fn cut_while_sending(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    // Bounded: an error chain is a handful of links.
    for _ in 0..16 {
        let Some(c) = cause else { return false };
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

async fn get(http: &reqwest::Client, app: &App, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = http.get(app.url(path));
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    reply(req).await
}

async fn post(http: &reqwest::Client, app: &App, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
    reply(http.post(app.url(path)).header(CONTENT_TYPE, content_type).body(body)).await
}

/// Signs in with `token` (and `next`, if given).
async fn sign_in(http: &reqwest::Client, app: &App, token: &str, next: Option<&str>) -> Reply {
    let mut pairs = vec![("token", token)];
    if let Some(n) = next {
        pairs.push(("next", n));
    }
    let body = serde_urlencoded::to_string(&pairs).expect("a form");
    post(http, app, "/login", FORM, body.into_bytes()).await
}

fn select<'a>(html: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    html.select(&Selector::parse(css).expect("a selector")).collect()
}

/// The sign-in form is there: a password field `token` and a hidden `next` holding `next`.
fn assert_form(html: &Html, next: &str) {
    assert_eq!(select(html, r#"form[method="post"][action="/login"]"#).len(), 1, "the form");
    assert_eq!(select(html, r#"form input[name="token"][type="password"]"#).len(), 1, "the token field");
    let hidden = select(html, r#"form input[name="next"][type="hidden"]"#);
    assert_eq!(hidden.len(), 1, "the next field");
    assert_eq!(hidden[0].value().attr("value"), Some(next));
    for s in select(html, "script") {
        assert_eq!(s.value().attr("src"), Some("/assets/live.js"), "only our script");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_reads_and_signs_out() {
    let app = locked_app().await;
    let http = browser();

    // Without credentials: pages redirect to the sign-in page, /v1 keeps its JSON 401.
    let r = get(&http, &app, "/", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2F");
    let r = get(&http, &app, "/artifacts?verdict=pass", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2Fartifacts%3Fverdict%3Dpass");
    let r = get(&http, &app, "/v1/audit", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(r.header(CONTENT_TYPE).unwrap_or("").starts_with("application/json"));
    let body: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(body["error"], "token_required");

    // The sign-in page: open, valid HTML, the form, where tokens come from.
    let r = get(&http, &app, "/login?next=%2Fartifacts%3Fverdict%3Dpass", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.html();
    assert_form(&html, "/artifacts?verdict=pass");
    assert!(r.body.contains("assay token create") && r.body.contains("--read-token-file"), "{}", r.body);
    assert!(r.header(SET_COOKIE).is_none());

    // A wrong token: 401, the form again with a message, no cookie.
    let r = sign_in(&http, &app, "assay_not-a-token", Some("/queue")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header(SET_COOKIE).is_none(), "no cookie for a wrong token");
    let html = r.html();
    assert_form(&html, "/queue");
    assert!(!select(&html, "#login-error").is_empty(), "says the token was not accepted");

    // A token from `assay token create`: 303 to next, with the cookie.
    let token = create_token(&app, "browser");
    let r = sign_in(&http, &app, &token, Some("/artifacts?verdict=pass")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/artifacts?verdict=pass");
    let set = r.header(SET_COOKIE).expect("Set-Cookie").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.split(';').any(|a| a.trim() == attr), "{attr} in {set}");
    }
    assert!(!set.contains("Max-Age"), "a session cookie: {set}");
    let cookie = r.cookie();
    assert_eq!(cookie, format!("assay_read={token}"));

    // The cookie authorizes pages, /v1 and the live stream.
    for path in ["/", "/artifacts", "/artifacts?verdict=pass", "/events", "/v1/audit", "/v1/checkpoint"] {
        let r = get(&http, &app, path, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    let home = get(&http, &app, "/", Some(&cookie)).await.html();
    assert_eq!(select(&home, r#"header.top form[action="/logout"] button"#).len(), 1, "a sign-out button");
    let stream =
        http.get(app.url("/v1/stream")).header(COOKIE, &cookie).send().await.expect("GET /v1/stream");
    assert_eq!(stream.status(), StatusCode::OK);
    let ct = stream.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    drop(stream);

    // The bearer header wins over the cookie.
    let r = reply(http.get(app.url("/v1/audit")).header(COOKIE, &cookie).bearer_auth("assay_wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r =
        reply(http.get(app.url("/v1/audit")).header(COOKIE, "assay_read=assay_wrong").bearer_auth(&token))
            .await;
    assert_eq!(r.status, StatusCode::OK);

    // Signed in, /login says so and offers to sign out.
    let r = get(&http, &app, "/login", Some(&cookie)).await;
    let html = r.html();
    assert!(
        !select(&html, "#login-status").is_empty() && !select(&html, r#"form[action="/logout"]"#).is_empty()
    );

    // The operator's file token signs in as well; `next` defaults to the overview.
    let r = sign_in(&http, &app, FILE_TOKEN, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/");
    let file_cookie = r.cookie();
    assert_eq!(get(&http, &app, "/kernels", Some(&file_cookie)).await.status, StatusCode::OK);

    // Sign out: the cookie is cleared and the browser goes to the sign-in page.
    let r = post(&http, &app, "/logout", FORM, Vec::new()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
    let cleared = r.header(SET_COOKIE).expect("Set-Cookie").to_owned();
    assert!(cleared.starts_with("assay_read=;"), "{cleared}");
    assert!(cleared.split(';').any(|a| a.trim() == "Max-Age=0"), "{cleared}");
    // What a browser then sends: an empty cookie, which is no credential.
    let r = get(&http, &app, "/", Some("assay_read=")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // Revoked: the cookie stops working at once, pages send the browser back to sign in, and
    // the live feed it opened ends with a final `error` event.
    let mut feed = app::Sse::open(http.get(app.url("/v1/stream")).header(COOKIE, &cookie)).await;
    let (code, _, err) = assay(&["token", "revoke", "--db", &app.db, "--name", "browser"]);
    assert_eq!(code, 0, "{err}");
    let last = tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("the live feed ends within the bound")
        .expect("a final event");
    assert_eq!(last.event, "error", "{last:?}");
    let data: serde_json::Value = serde_json::from_str(&last.data).expect("JSON");
    assert_eq!(data["error"], "token_revoked");
    assert!(data["detail"].as_str().is_some_and(|d| d.contains("/login")), "{data}");
    assert!(
        tokio::time::timeout(Duration::from_secs(10), feed.next()).await.expect("the feed ends").is_none()
    );
    let r = get(&http, &app, "/", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=%2F");
    let r = get(&http, &app, "/v1/audit", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get(&http, &app, "/v1/stream", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get(&http, &app, "/login?next=%2F", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.html();
    assert!(!select(&html, "#login-error").is_empty(), "the page says the token was not accepted");
    assert_form(&html, "/");
    let r = sign_in(&http, &app, &token, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a revoked token does not sign in");
    assert!(r.header(SET_COOKIE).is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_only_leads_to_this_server() {
    let app = locked_app().await;
    let http = browser();
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ] {
        let r = sign_in(&http, &app, FILE_TOKEN, Some(next)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(r.location(), "/", "{next:?}");
        // The page never offers it either.
        let r = get(&http, &app, &format!("/login?next={}", urlencode(next)), None).await;
        assert_eq!(r.status, StatusCode::OK, "{next:?}");
        assert_form(&r.html(), "/");
    }
    // Markup in a local next is escaped, never run.
    let next = r#"/"><script>alert(1)</script>"#;
    let r = get(&http, &app, &format!("/login?next={}", urlencode(next)), None).await;
    assert_form(&r.html(), next);
    assert!(!r.body.contains("<script>alert"), "{}", r.body);
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).expect("encodes").trim_start_matches("v=").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_in_forms_are_4xx_pages_without_a_cookie() {
    let app = locked_app().await;
    let http = browser();
    let oversized = format!("token={FILE_TOKEN}&next=/{}", "a".repeat(8 * 1024)).into_bytes();
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode)> = vec![
        ("oversized", FORM, oversized, StatusCode::PAYLOAD_TOO_LARGE),
        ("empty", FORM, Vec::new(), StatusCode::BAD_REQUEST),
        ("no token", FORM, b"next=%2F".to_vec(), StatusCode::BAD_REQUEST),
        ("blank token", FORM, b"token=+++&next=%2F".to_vec(), StatusCode::BAD_REQUEST),
        ("two tokens", FORM, format!("token={FILE_TOKEN}&token=x").into_bytes(), StatusCode::BAD_REQUEST),
        (
            "JSON",
            "application/json",
            format!(r#"{{"token":"{FILE_TOKEN}"}}"#).into_bytes(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("binary", FORM, vec![0xff, 0xfe, 0x00, b'=', 0x80], StatusCode::BAD_REQUEST),
    ];
    for (what, content_type, body, want) in cases {
        let request = http.post(app.url("/login")).header(CONTENT_TYPE, content_type).body(body);
        let Some(r) = reply_unless_cut(request).await else {
            assert_eq!(want, StatusCode::PAYLOAD_TOO_LARGE, "{what}: the connection was cut");
            continue;
        };
        assert_eq!(r.status, want, "{what}: {}", r.body);
        if want == StatusCode::PAYLOAD_TOO_LARGE {
            // Refused by its length, unread: the rest of it is on the connection, so the answer
            // says the connection closes (and the next request does not reuse it).
            assert_eq!(r.header(CONNECTION), Some("close"), "{what}");
        }
        assert!(r.header(SET_COOKIE).is_none(), "{what}: no cookie");
        assert!(!select(&r.html(), "#login-error").is_empty(), "{what}: says what is wrong");
    }
    // No content type at all; and a body streamed without a length, past the limit.
    let r = reply(http.post(app.url("/login")).body(format!("token={FILE_TOKEN}"))).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..10).map(|_| Ok(vec![b'a'; 1024])).collect();
    let streamed = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let request = http.post(app.url("/login")).header(CONTENT_TYPE, FORM).body(streamed);
    if let Some(r) = reply_unless_cut(request).await {
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    }
    // Another site cannot post the form.
    let body = format!("token={FILE_TOKEN}");
    let r = reply(
        http.post(app.url("/login"))
            .header(CONTENT_TYPE, FORM)
            .header("sec-fetch-site", "cross-site")
            .body(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header(SET_COOKIE).is_none());
    let r = reply(http.post(app.url("/logout")).header("sec-fetch-site", "cross-site")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header(SET_COOKIE).is_none());
    // The form from this site is taken.
    let body = format!("token={FILE_TOKEN}");
    let r = reply(
        http.post(app.url("/login"))
            .header(CONTENT_TYPE, FORM)
            .header("sec-fetch-site", "same-origin")
            .body(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

/// Login CSRF: a form another origin makes a browser send (its `Origin`, or its `Referer`
/// when there is no `Origin`, naming another host or port) is refused with 403 and no cookie,
/// `Sec-Fetch-Site: same-site` from another host too; the server's own origin is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_out_refuse_forms_from_other_origins() {
    let app = locked_app().await;
    let http = browser();
    let own = app.url("");
    let other_port = format!("http://127.0.0.1:{}", app.addr.port().wrapping_add(1).max(1));
    let foreign: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("foreign Origin", vec![("origin", "http://evil.example".to_owned())]),
        ("another port of this host", vec![("origin", other_port.clone())]),
        ("Origin null", vec![("origin", "null".to_owned())]),
        ("foreign Referer, no Origin", vec![("referer", "http://evil.example/page".to_owned())]),
        ("Referer on another port", vec![("referer", format!("{other_port}/login"))]),
        (
            "same-site from another host",
            vec![
                ("sec-fetch-site", "same-site".to_owned()),
                ("origin", "http://sibling.localhost".to_owned()),
            ],
        ),
        ("same-site without an origin", vec![("sec-fetch-site", "same-site".to_owned())]),
        (
            "a foreign Origin wins over an own Referer",
            vec![("origin", "http://evil.example".to_owned()), ("referer", format!("{own}/login"))],
        ),
        (
            "cross-site, whatever the Origin",
            vec![("sec-fetch-site", "cross-site".to_owned()), ("origin", own.clone())],
        ),
    ];
    for (what, headers) in &foreign {
        for path in ["/login", "/logout"] {
            let mut req =
                http.post(app.url(path)).header(CONTENT_TYPE, FORM).body(format!("token={FILE_TOKEN}"));
            for (name, value) in headers {
                req = req.header(*name, value);
            }
            let r = reply(req).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}, {what}: {}", r.body);
            assert!(r.header(SET_COOKIE).is_none(), "{path}, {what}: no cookie");
            assert!(r.body.contains("only taken from this server"), "{path}, {what}: says why: {}", r.body);
        }
    }
    // The server's own origin, as a browser sends it with the form.
    let own_cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("own Origin", vec![("origin", own.clone()), ("sec-fetch-site", "same-origin".to_owned())]),
        ("own Referer, no Origin", vec![("referer", format!("{own}/login?next=%2F"))]),
        ("no browser headers at all", vec![]),
    ];
    for (what, headers) in &own_cases {
        let mut req =
            http.post(app.url("/login")).header(CONTENT_TYPE, FORM).body(format!("token={FILE_TOKEN}"));
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let r = reply(req).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "/login, {what}: {}", r.body);
        assert_eq!(r.cookie(), format!("assay_read={FILE_TOKEN}"), "{what}");
        let mut req = http.post(app.url("/logout"));
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let r = reply(req).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "/logout, {what}: {}", r.body);
        assert!(r.header(SET_COOKIE).is_some_and(|c| c.starts_with("assay_read=;")), "/logout, {what}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loopback_servers_need_no_sign_in() {
    let app = spawn_app().await;
    let http = browser();
    for path in ["/", "/artifacts", "/events", "/v1/audit"] {
        let r = get(&http, &app, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    let home = get(&http, &app, "/", None).await.html();
    assert!(select(&home, r#"form[action="/logout"]"#).is_empty(), "nothing to sign out of");
    let r = get(&http, &app, "/login", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_form(&r.html(), "/");
    assert!(r.body.contains("not needed"), "{}", r.body);
    // A stale cookie changes nothing on an open server.
    let r = get(&http, &app, "/", Some("assay_read=assay_unknown")).await;
    assert_eq!(r.status, StatusCode::OK);
    app.stop().await;
}
