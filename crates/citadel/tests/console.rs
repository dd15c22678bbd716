//! The web console in a real browser: headless Chromium driven through
//! chromedriver (WebDriver) against a real `citadel serve`. Each test saves
//! screenshots under `target/console-screenshots/` for a reviewer.
//!
//! Skipped with a message where Chromium or chromedriver is missing; under
//! `CI=true` a missing browser fails instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use citadel_testkit::{TempDir, free_port, temp_dir};
use common::{Proc, owner_token, repo, request, wait_for};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

mod common;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "correct horse battery";

/// True when the browser is here; else says why the test skips (and fails
/// under CI=true).
fn browser_present() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {CHROMIUM} or {CHROMEDRIVER} is missing: install chromium and chromium-driver"
    );
    eprintln!(
        "skipping the console's browser tests: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
    );
    false
}

/// A `citadel serve` with the tenant `acme`, its owner token and users.
struct Server {
    _process: Proc,
    port: u16,
    dir: TempDir,
    owner: String,
}

impl Server {
    fn start() -> Server {
        let dir = temp_dir("console");
        let port = free_port();
        let process = Proc(
            Command::new(env!("CARGO_BIN_EXE_citadel"))
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .current_dir(dir.path())
                .env("CITADEL_SANDBOX_HOSTS", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for("the server to come up", 30, || {
            request(port, "GET", "/health", None, None).0 == 200
        });
        let owner = owner_token(dir.path(), &[]);
        Server {
            _process: process,
            port,
            dir,
            owner,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Creates a user of `acme` with `role` (in `folder`, or everywhere).
    fn user(&self, name: &str, role: &str, folder: Option<&str>) {
        let mut args = vec![
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--username",
            name,
            "--role",
            role,
        ];
        if let Some(f) = folder {
            args.extend(["--path-prefix", f]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_citadel"))
            .args(&args)
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{PASSWORD}\n").as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "create-user {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        request(self.port, method, path, Some(&self.owner), body)
    }
}

/// A chromedriver, killed on drop.
struct Driver {
    _process: Proc,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let process = Proc(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for("chromedriver to listen", 20, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Driver {
            _process: process,
            port,
        }
    }

    /// A new browser: its own profile, so its own tab storage.
    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1400,1000"],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromedriver session")
    }
}

fn screenshots() -> PathBuf {
    let dir = repo().join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn snap(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

const WAIT: Duration = Duration::from_secs(15);

async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            snap(c, "failure").await;
            panic!("no `{css}` on the page: {e}")
        }
    }
}

/// Waits until the text of `css` contains `want`; that text.
async fn text_contains(c: &Client, css: &str, want: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if t.contains(want) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    snap(c, "failure").await;
    panic!("`{css}` never contained `{want}`; last text: {last:?}");
}

async fn absent(c: &Client, css: &str) -> bool {
    c.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

/// Does `act` to the element once it is there. A page that re-renders
/// between the lookup and the action leaves a stale reference: look it up
/// again. Any other error fails the test.
async fn on_element<F, Fut>(c: &Client, css: &str, act: F)
where
    F: Fn(fantoccini::elements::Element) -> Fut,
    Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
{
    for _ in 0..50 {
        match act(find(c, css).await).await {
            Ok(()) => return,
            Err(e) if e.is_stale_element_reference() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("acting on `{css}`: {e}"),
        }
    }
    panic!("`{css}` went stale on every attempt");
}

async fn click(c: &Client, css: &str) {
    on_element(c, css, |e| async move { e.click().await }).await;
}

/// Replaces the text of an input.
async fn type_into(c: &Client, css: &str, text: &str) {
    on_element(c, css, |e| async move {
        e.clear().await?;
        e.send_keys(text).await
    })
    .await;
}

/// Replaces the whole text of the CodeMirror editor inside `css`: selects
/// all with the keyboard, then pastes (typing would meet the editor's
/// bracket closing, as a person's typing does).
async fn set_code(c: &Client, css: &str, code: &str) {
    let content = find(c, &format!("{css} .cm-content")).await;
    content.click().await.unwrap();
    content.send_keys("\u{e009}a\u{e000}").await.unwrap();
    c.execute(
        "const el = document.querySelector(arguments[0] + ' .cm-content');
         const data = new DataTransfer();
         data.setData('text/plain', arguments[1]);
         el.dispatchEvent(new ClipboardEvent('paste',
             { clipboardData: data, bubbles: true, cancelable: true }));",
        vec![json!(css), json!(code)],
    )
    .await
    .unwrap();
}

async fn log_in(c: &Client, server: &Server, user: &str) {
    c.goto(&server.url("/")).await.unwrap();
    type_into(c, "input[name=tenant]", "acme").await;
    type_into(c, "input[name=username]", user).await;
    type_into(c, "input[name=password]", PASSWORD).await;
    click(c, "#login-submit").await;
    text_contains(c, "#who", user).await;
}

/// The page raised no dialog (an injected `alert` would).
async fn no_dialog(c: &Client) {
    assert!(
        c.get_alert_text().await.is_err(),
        "a dialog opened: something ran"
    );
}

fn run_async<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

#[test]
fn write_run_review_and_roll_back_in_the_browser() {
    if !browser_present() {
        return;
    }
    let server = Server::start();
    server.user("alice", "admin", None);
    server.user("bob", "approver", None);
    let driver = Driver::start();
    run_async(async {
        let c = driver.browser().await;
        // The console answers with its security headers; no token in the URL.
        log_in(&c, &server, "alice").await;
        assert_eq!(c.current_url().await.unwrap().query(), None);

        // A new TypeScript script with a mistake: the diagnostic shows at its line.
        click(&c, "nav a[href='#/scripts']").await;
        click(&c, "#new-script").await;
        type_into(&c, "#script-name", "billing/greet").await;
        set_code(
            &c,
            "#editor",
            "const who: string = input.name;\nreturn eval(who);",
        )
        .await;
        let found = text_contains(&c, "#diagnostics", "no-eval").await;
        assert!(found.starts_with("2:"), "the finding is on line 2: {found}");
        assert_eq!(
            find(&c, "#diagnostic-count").await.text().await.unwrap(),
            "1 blocking"
        );
        snap(&c, "editor-diagnostic").await;

        // Fix it, save it, run it with input: the result and the live logs.
        set_code(
            &c,
            "#editor",
            "const who: string = input.name;\nconsole.log(\"greeting\", who);\nreturn { hello: who };",
        )
        .await;
        text_contains(&c, "#diagnostic-count", "no blocking findings").await;
        type_into(&c, "#change-note", "first").await;
        click(&c, "#save").await;
        text_contains(&c, "#script-title", "billing/greet").await;
        text_contains(&c, "#versions", "1.0.0").await;
        set_code(&c, "#run-input", "{\"name\": \"Ada\"}").await;
        click(&c, "#run").await;
        text_contains(&c, "#run-out", "succeeded").await;
        text_contains(&c, "#run-logs", "greeting Ada").await;
        let result = text_contains(&c, "#run-result", "hello").await;
        assert_eq!(
            serde_json::from_str::<Value>(&result).unwrap(),
            json!({"hello": "Ada"})
        );
        snap(&c, "run-with-logs").await;

        // A failing run's error location jumps to its line.
        set_code(
            &c,
            "#editor",
            "const who: string = input.name;\nthrow new Error(\"no \" + who);",
        )
        .await;
        click(&c, "#save").await;
        text_contains(&c, "#versions", "1.0.1").await;
        click(&c, "#run").await;
        text_contains(&c, "#run-error", "no Ada").await;
        let at = text_contains(&c, "#error-location", "at 2:").await;
        assert!(at.contains("at 2:"), "{at}");

        // Require approval: alice's next version is a draft she submits.
        let (status, _) = server.api(
            "PUT",
            "/v1/settings",
            Some(&json!({"approval_required": true})),
        );
        assert_eq!(status, 200);
        set_code(&c, "#editor", "return { v: 3 };").await;
        type_into(&c, "#change-note", "v3").await;
        click(&c, "#save").await;
        text_contains(&c, "#saved", "draft").await;
        text_contains(&c, "#versions", "1.0.2").await;
        click(&c, "[data-version='1.0.2'] .submit").await;
        text_contains(&c, "#versions", "submitted").await;
        // alice may approve, but not her own version, and is told so.
        assert!(absent(&c, "[data-version='1.0.2'] .approve").await);
        text_contains(&c, "[data-version='1.0.2']", "another reviewer approves it").await;

        // bob approves it in his own browser, looks at the diff, rolls back.
        let b = driver.browser().await;
        log_in(&b, &server, "bob").await;
        b.goto(&server.url("/#/scripts/billing%2Fgreet"))
            .await
            .unwrap();
        click(&b, "[data-version='1.0.2'] .approve").await;
        let rows = text_contains(&b, "#versions", "approved").await;
        assert!(rows.contains("1.0.2"), "{rows}");
        find(&b, "#diff .cm-mergeView").await;
        text_contains(&b, "#diff", "v: 3").await;
        snap(&b, "diff").await;
        click(&b, "[data-version='1.0.0'] .rollback").await;
        text_contains(&b, "[data-version='1.0.2']", "Make live").await;
        let (_, script) = server.api("GET", "/v1/scripts/billing%2Fgreet", None);
        assert_eq!(script["live_version"], "1.0.0");
        b.close().await.unwrap();

        // Engage a kill switch: runs are refused.
        c.goto(&server.url("/#/kill-switches")).await.unwrap();
        find(&c, "#switch-scope")
            .await
            .select_by(Locator::XPath("option[text()='folder']"))
            .await
            .unwrap();
        type_into(&c, "#switch-target", "billing/").await;
        type_into(&c, "#switch-reason", "double charges").await;
        click(&c, "#switch-engage").await;
        text_contains(&c, "#switches", "double charges").await;
        snap(&c, "kill-switch").await;
        c.goto(&server.url("/#/scripts/billing%2Fgreet"))
            .await
            .unwrap();
        click(&c, "#run").await;
        text_contains(&c, ".run-panel .failure", "killed").await;

        // Logging out revokes the session.
        click(&c, "#logout").await;
        find(&c, "#login").await;
        let (_, audit) = server.api("GET", "/v1/audit?action=auth.logout", None);
        assert_eq!(audit["entries"].as_array().unwrap().len(), 1, "{audit}");
        c.close().await.unwrap();
    });
}

#[test]
fn tenant_text_renders_inert_and_viewers_get_no_edit_buttons() {
    if !browser_present() {
        return;
    }
    let server = Server::start();
    server.user("vera", "viewer", None);
    let hostile = "<img src=x onerror=alert(1)></script><script>alert(2)</script>";
    let source = format!(
        "console.log({h:?});\nreturn {{ html: {h:?} }};",
        h = hostile
    );
    let (status, saved) = server.api(
        "POST",
        "/v1/scripts",
        Some(&json!({"name": "xss", "source": source, "change_note": hostile})),
    );
    assert_eq!(status, 201, "{saved}");
    let (status, run) = server.api("POST", "/v1/scripts/xss/run", Some(&json!({})));
    assert_eq!(status, 200, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let driver = Driver::start();
    run_async(async {
        let c = driver.browser().await;
        log_in(&c, &server, "vera").await;
        // The run's logs and result show the markup as text.
        c.goto(&server.url(&format!("/#/runs/{run_id}")))
            .await
            .unwrap();
        let logs = text_contains(&c, "#run-logs", "<img src=x").await;
        assert!(
            logs.contains("</script><script>alert(2)</script>"),
            "{logs}"
        );
        text_contains(&c, "#run-result", "onerror").await;
        no_dialog(&c).await;
        assert!(absent(&c, "main img").await, "an injected element rendered");
        assert!(absent(&c, "main script").await);
        snap(&c, "inert-run").await;

        // The change note too; and a viewer has no edit, save or review buttons.
        c.goto(&server.url("/#/scripts/xss")).await.unwrap();
        text_contains(&c, "#versions", "<img src=x").await;
        no_dialog(&c).await;
        assert!(absent(&c, "main img").await);
        assert!(absent(&c, "#save").await, "a viewer sees a save button");
        assert!(absent(&c, "#run").await, "a viewer sees a run button");
        assert!(absent(&c, "#versions button").await);
        c.goto(&server.url("/#/scripts")).await.unwrap();
        text_contains(&c, "main", "xss").await;
        assert!(absent(&c, "#new-script").await);
        c.goto(&server.url("/#/kill-switches")).await.unwrap();
        find(&c, "main h2").await;
        assert!(absent(&c, "#engage").await);
        snap(&c, "viewer").await;
        c.close().await.unwrap();
    });
}

#[test]
fn the_dashboard_charts_runs_from_the_stats_endpoint() {
    if !browser_present() {
        return;
    }
    let server = Server::start();
    server.user("alice", "developer", None);
    let (status, _) = server.api(
        "POST",
        "/v1/scripts",
        Some(&json!({"name": "ok", "source": "return 1;"})),
    );
    assert_eq!(status, 201);
    let (status, _) = server.api(
        "POST",
        "/v1/scripts",
        Some(&json!({"name": "bad", "source": "throw new Error('x');"})),
    );
    assert_eq!(status, 201);
    for _ in 0..3 {
        assert_eq!(
            server.api("POST", "/v1/scripts/ok/run", Some(&json!({}))).0,
            200
        );
    }
    assert_eq!(
        server
            .api("POST", "/v1/scripts/bad/run", Some(&json!({})))
            .0,
        200
    );
    let (status, stats) = server.api("GET", "/v1/stats?window=hour", None);
    assert_eq!(status, 200, "{stats}");
    let finished: i64 = stats["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["finished"].as_i64().unwrap())
        .sum();
    assert_eq!(finished, 4, "{stats}");
    assert_eq!(stats["scripts"][0]["script"], "ok");
    assert_eq!(stats["scripts"][0]["finished"], 3);
    assert_eq!(stats["scripts"][1]["failed"], 1);
    let driver = Driver::start();
    run_async(async {
        let c = driver.browser().await;
        log_in(&c, &server, "alice").await;
        let figures = text_contains(&c, "#figures", "4 runs").await;
        assert!(figures.contains("25.0% failed"), "{figures}");
        find(&c, "#chart canvas").await;
        text_contains(&c, "#by-script", "bad").await;
        snap(&c, "dashboard").await;
        c.close().await.unwrap();
    });
}

const GATED_WORKFLOW: &str = r#"
name: release
version: 1
steps:
  - id: build
    type: script
    code: "return 'built';"
  - id: lint
    type: assert
    depends_on: [build]
    condition: "true"
  - id: gate
    type: approval
    depends_on: [build]
    message: "ship it?"
  - id: ship
    type: script
    depends_on: [gate, lint]
    code: "return 'shipped';"
"#;

/// A state attribute of one step's box in the drawn DAG, once it is `want`.
async fn step_state(c: &Client, step: &str, want: &str) {
    let css = format!("#dag g[data-step='{step}']");
    let deadline = Instant::now() + WAIT;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(e) = c.find(Locator::Css(&css)).await {
            last = e.attr("data-state").await.unwrap();
            if last.as_deref() == Some(want) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    snap(c, "failure").await;
    panic!("step `{step}` never drew as `{want}`; last: {last:?}");
}

#[test]
fn a_workflow_run_draws_its_dag_and_each_step_state_as_it_moves() {
    if !browser_present() {
        return;
    }
    let server = Server::start();
    server.user("alice", "developer", None);
    let (status, body) = server.api(
        "POST",
        "/v1/workflows",
        Some(&json!({"name": "release", "source": GATED_WORKFLOW})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.api("POST", "/v1/workflows/release/run", Some(&json!({})));
    assert_eq!(status, 202, "{body}");
    let id = body["run_id"].as_str().unwrap().to_owned();
    let driver = Driver::start();
    run_async(async {
        let c = driver.browser().await;
        log_in(&c, &server, "alice").await;
        c.goto(&server.url(&format!("/#/runs/{id}"))).await.unwrap();
        step_state(&c, "gate", "waiting").await;
        step_state(&c, "build", "succeeded").await;
        step_state(&c, "lint", "succeeded").await;
        step_state(&c, "ship", "not_reached").await;
        // One arrow per dependency, drawn from it to its dependent.
        let edges = c.find_all(Locator::Css("#dag .dag-edge")).await.unwrap();
        let mut drawn = Vec::new();
        for e in edges {
            drawn.push(format!(
                "{}>{}",
                e.attr("data-from").await.unwrap().unwrap(),
                e.attr("data-to").await.unwrap().unwrap()
            ));
        }
        drawn.sort();
        assert_eq!(
            drawn,
            ["build>gate", "build>lint", "gate>ship", "lint>ship"]
        );
        snap(&c, "workflow-dag").await;
        // A decision elsewhere: the open page follows the run to its end.
        let (status, body) = server.api(
            "POST",
            &format!("/v1/runs/{id}/steps/gate/approve"),
            Some(&json!({})),
        );
        assert_eq!(status, 200, "{body}");
        step_state(&c, "ship", "succeeded").await;
        step_state(&c, "gate", "succeeded").await;
        c.close().await.unwrap();
    });
}

/// Citadel's own console page: every response carries the policy that
/// keeps tenant text inert and the page unframable.
#[test]
fn the_console_is_served_with_a_strict_policy() {
    let server = Server::start();
    let headers = |path: &str| -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
        (
            status,
            raw.split("\r\n\r\n").next().unwrap().to_ascii_lowercase(),
        )
    };
    for path in ["/", "/console/app.js", "/console/style.css"] {
        let (status, head) = headers(path);
        assert_eq!(status, 200, "{path}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self';"),
            "{path}: {head}"
        );
        assert!(head.contains("frame-ancestors 'none'"), "{path}");
        assert!(head.contains("x-frame-options: deny"), "{path}");
        assert!(head.contains("referrer-policy: no-referrer"), "{path}");
        assert!(head.contains("x-content-type-options: nosniff"), "{path}");
        assert!(
            !head.contains("unsafe-inline") && !head.contains("unsafe-eval"),
            "{path}"
        );
    }
    let (status, _) = headers("/console/missing.js");
    assert_eq!(status, 404);
}

/// A page of the host product, served from its own origin: it frames
/// `frame_src` and writes every message it receives into `#messages`.
struct HostPage {
    listener: Option<std::net::TcpListener>,
    port: u16,
}

impl HostPage {
    /// Takes a port: the page's origin is known before it serves.
    fn bind() -> HostPage {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        HostPage {
            listener: Some(listener),
            port,
        }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn serve(mut self, frame_src: String) -> HostPage {
        let listener = self.listener.take().unwrap();
        let html = format!(
            "<!doctype html><html><body><pre id=\"messages\"></pre>\
             <iframe id=\"citadel\" src=\"{frame_src}\" width=\"1300\" height=\"800\"></iframe>\
             <script>addEventListener('message', (e) => {{\
               document.getElementById('messages').textContent +=\
                 e.origin + ' ' + JSON.stringify(e.data) + '\\n'; }});</script>\
             </body></html>"
        );
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
            }
        });
        self
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

#[test]
fn a_host_page_embeds_the_editor_for_one_end_user_and_folder() {
    if !browser_present() {
        return;
    }
    let server = Server::start();
    // The host product's origin, configured before its page serves.
    let host = HostPage::bind();
    let host_origin = host.origin();
    let (status, body) = server.api(
        "PUT",
        "/v1/settings",
        Some(&json!({"embed": {"origins": [host_origin], "theme": {"accent": "#aa00aa", "font": "DejaVu Sans"}}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.api(
        "POST",
        "/v1/scripts",
        Some(&json!({"name": "billing/secret", "source": "return 1;"})),
    );
    assert_eq!(status, 201);
    let mint = || {
        let (status, offer) = server.api(
            "POST",
            "/v1/embed/sessions",
            Some(&json!({"user": "cust-42", "folder": "customers/42/"})),
        );
        assert_eq!(status, 201, "{offer}");
        offer
    };
    let offer = mint();
    let path = offer["path"].as_str().unwrap();
    assert!(path.starts_with("/embed/acme#code=cem_"), "{path}");

    let host = host.serve(server.url(path));
    let driver = Driver::start();
    run_async(async {
        let c = driver.browser().await;
        c.goto(&host.url()).await.unwrap();
        c.enter_frame(0).await.unwrap();
        text_contains(&c, "#who", "embed:cust-42 · customers/42/").await;
        // Only the session's folder: the other script is not listed.
        let list = text_contains(&c, "main", "Scripts").await;
        assert!(!list.contains("billing/secret"), "{list}");
        click(&c, "#new-script").await;
        let name = find(&c, "#script-name").await;
        assert_eq!(
            name.prop("value").await.unwrap().as_deref(),
            Some("customers/42/")
        );
        name.send_keys("hello").await.unwrap();
        set_code(
            &c,
            "#editor",
            "console.log('hi from', input.name);\nreturn { ok: input.name };",
        )
        .await;
        text_contains(&c, "#diagnostic-count", "no blocking findings").await;
        click(&c, "#save").await;
        text_contains(&c, "#script-title", "customers/42/hello").await;
        set_code(&c, "#run-input", "{\"name\": \"Eve\"}").await;
        click(&c, "#run").await;
        text_contains(&c, "#run-logs", "hi from Eve").await;
        snap(&c, "embed").await;
        // Outside its folder the end user is offered no save, and the
        // server refuses the session's token there anyway.
        c.execute("location.hash = '#/new'", vec![]).await.unwrap();
        type_into(&c, "#script-name", "billing/evil").await;
        find(&c, "#editor .cm-content").await;
        assert!(absent(&c, "#save").await);
        let session = c
            .execute("return sessionStorage.getItem('citadel.session')", vec![])
            .await
            .unwrap();
        let session = session.as_str().unwrap().to_owned();
        let (status, body) = request(
            server.port,
            "POST",
            "/v1/scripts",
            Some(&session),
            Some(&json!({"name": "billing/evil", "source": "return 2;"})),
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
        let (status, _) = request(
            server.port,
            "GET",
            "/v1/scripts/billing%2Fsecret",
            Some(&session),
            None,
        );
        assert_eq!(status, 403);

        // The host page heard what happened, from Citadel's origin.
        c.enter_parent_frame().await.unwrap();
        let heard = text_contains(&c, "#messages", "\"type\":\"ran\"").await;
        let citadel_origin = format!("http://127.0.0.1:{}", server.port);
        assert!(
            heard.contains(&format!("{citadel_origin} {{\"source\":\"citadel\",\"type\":\"saved\",\"script\":\"customers/42/hello\"")),
            "{heard}"
        );
        assert!(!heard.contains("billing/evil"), "{heard}");
        c.close().await.unwrap();
    });

    // The code was spent; the end user is on the record under the host's id.
    let code = offer["code"].as_str().unwrap();
    let (status, body) = request(
        server.port,
        "POST",
        "/v1/embed/exchange",
        None,
        Some(&json!({"code": code, "tenant": "acme"})),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (_, audit) = server.api(
        "GET",
        "/v1/audit?principal=embed:cust-42&action=script.save",
        None,
    );
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["target"], "customers/42/hello");
    let (_, runs) = server.api("GET", "/v1/runs?script=customers/42/hello", None);
    assert_eq!(runs[0]["principal"], "embed:cust-42", "{runs}");

    // A page of an origin not in the tenant's list cannot frame the editor,
    // and no page can frame the console.
    let other_offer = mint();
    let stranger = HostPage::bind().serve(server.url(other_offer["path"].as_str().unwrap()));
    let console_framer = HostPage::bind().serve(server.url("/"));
    run_async(async {
        let c = driver.browser().await;
        for page in [&stranger, &console_framer] {
            c.goto(&page.url()).await.unwrap();
            find(&c, "#citadel").await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            c.enter_frame(0).await.unwrap();
            assert!(absent(&c, "#app").await, "{} framed Citadel", page.url());
            c.enter_parent_frame().await.unwrap();
        }
        snap(&c, "embed-refused").await;
        c.close().await.unwrap();
    });
    // The stranger's page never opened the session: its code is unspent.
    let (status, _) = request(
        server.port,
        "POST",
        "/v1/embed/exchange",
        None,
        Some(&json!({"code": other_offer["code"], "tenant": "acme"})),
    );
    assert_eq!(status, 200);
}

#[test]
fn an_owner_sees_every_operations_view_and_secret_values_stay_write_only() {
    if !browser_present() {
        return;
    }
    let server = Server::start();
    server.user("olga", "owner", None);
    server.user("dan", "viewer", None);
    let driver = Driver::start();
    run_async(async {
        let c = driver.browser().await;
        log_in(&c, &server, "olga").await;
        for (route, title) in [
            ("kill-switches", "Kill switches"),
            ("schedules", "Schedules"),
            ("events", "Events"),
            ("jobs", "Jobs"),
            ("audit", "Audit log"),
            ("workflows", "Workflows"),
            ("plugins", "Plugins"),
            ("webhooks", "Webhooks"),
            ("secrets", "Secrets"),
            ("tokens", "Tokens"),
            ("users", "Users"),
            ("roles", "Roles"),
            ("settings", "Tenant settings"),
        ] {
            c.goto(&server.url(&format!("/#/{route}"))).await.unwrap();
            text_contains(&c, "main h2", title).await;
            assert!(absent(&c, "main .failure").await, "{route} shows an error");
        }
        // A platform view is not offered to a tenant's owner.
        assert!(absent(&c, "nav a[href='#/nodes']").await);
        // The audit page links its chain.
        c.goto(&server.url("/#/audit")).await.unwrap();
        text_contains(&c, "#chain", "The hash chain verifies").await;

        // A token scoped to a folder; its secret shown once.
        c.goto(&server.url("/#/tokens")).await.unwrap();
        type_into(&c, "#new-token input[placeholder=name]", "ci-billing").await;
        type_into(&c, "#new-token input[placeholder^=folder]", "billing/").await;
        click(&c, "#new-token button").await;
        let minted = text_contains(&c, "#minted", "ctk_").await;
        assert!(minted.contains("ci-billing"), "{minted}");

        // A user with a role bound to a folder, who can then log in.
        c.goto(&server.url("/#/users")).await.unwrap();
        type_into(&c, "#new-user input[placeholder=username]", "bea").await;
        type_into(&c, "#new-user input[type=password]", PASSWORD).await;
        type_into(&c, "#new-user input[placeholder^=folder]", "billing/").await;
        click(&c, "#new-user button").await;
        text_contains(&c, "main table", "bea").await;
        let login = json!({"tenant": "acme", "username": "dan", "password": PASSWORD});
        assert_eq!(server.api("POST", "/v1/login", Some(&login)).0, 200);
        // Disabled from its row: its next login is refused.
        click(&c, "button.disable-user[data-user=dan]").await;
        let deadline = Instant::now() + WAIT;
        while !absent(&c, "button.disable-user[data-user=dan]").await {
            assert!(Instant::now() < deadline, "dan still has a Disable button");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, body) = server.api("POST", "/v1/login", Some(&login));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized"))
        );

        // A secret's value is written, never shown.
        c.goto(&server.url("/#/secrets")).await.unwrap();
        type_into(&c, "input[placeholder=NAME]", "STRIPE_KEY").await;
        type_into(&c, "input[placeholder=value]", "sk_live_do_not_show").await;
        click(&c, "main form button").await;
        text_contains(&c, "main table", "STRIPE_KEY").await;
        let page = c.source().await.unwrap();
        assert!(
            !page.contains("sk_live_do_not_show"),
            "the value is on the page"
        );
        snap(&c, "secrets").await;

        // A custom role from the permission picker.
        c.goto(&server.url("/#/roles")).await.unwrap();
        type_into(&c, "input[placeholder=name]", "auditor").await;
        c.wait()
            .at_most(WAIT)
            .for_element(Locator::XPath("//label[contains(., 'audit.read')]/input"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        click(&c, "main form button[type=submit]").await;
        text_contains(&c, "main table", "auditor").await;
        c.close().await.unwrap();
    });
    let (_, roles) = server.api("GET", "/v1/roles", None);
    let auditor = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "auditor")
        .cloned()
        .unwrap();
    assert_eq!(auditor["permissions"], json!(["audit.read"]));
    let (_, tokens) = server.api("GET", "/v1/tokens", None);
    let minted = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci-billing")
        .cloned()
        .unwrap();
    assert_eq!(
        (minted["role"].as_str(), minted["path_prefix"].as_str()),
        (Some("developer"), Some("billing/")),
        "{minted}"
    );
    let (status, session) = request(
        server.port,
        "POST",
        "/v1/login",
        None,
        Some(&json!({"tenant": "acme", "username": "bea", "password": PASSWORD})),
    );
    assert_eq!(status, 200, "{session}");
    let (_, me) = request(
        server.port,
        "GET",
        "/v1/me",
        session["token"].as_str(),
        None,
    );
    assert_eq!(me["grants"][0]["path_prefix"], "billing/", "{me}");
}
