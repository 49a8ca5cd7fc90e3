//! A headless Chromium driven through `chromedriver`'s W3C WebDriver protocol (plain JSON over
//! HTTP, so no driver crate is needed), for tests that click through the web console.
//!
//! Without `chromium`/`chromedriver` on the machine, [`Browser::start`] returns `None` and the
//! test is skipped, unless `VISION_REQUIRE_BROWSER=1` (set by `scripts/test.sh`, which installs
//! them): then a missing browser fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key WebDriver uses for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the driver process ends when this is dropped.
pub struct Browser {
    client: reqwest::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium window of `width` × `height` whose
    /// preferred language is `lang` (e.g. `"en-US"`, `"ko-KR"`).
    pub async fn start(width: u32, height: u32, lang: &str) -> Option<Browser> {
        let required = std::env::var("VISION_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        let (Some(chromium), Some(driver)) = (
            find_program(&["chromium", "chromium-browser", "google-chrome"]),
            find_program(&["chromedriver"]),
        ) else {
            assert!(
                !required,
                "VISION_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed"
            );
            eprintln!("skipped: chromium and chromedriver are not installed");
            return None;
        };
        let port = free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-dev-shm-usage", format!("--lang={lang}"),
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": { "intl.accept_languages": lang },
            },
        }}});
        // Headless windows are at least ~500 px wide; narrower screens are emulated.
        let mut capabilities = capabilities;
        if width < 500 {
            capabilities["capabilities"]["alwaysMatch"]["goog:chromeOptions"]["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 } });
        }
        let mut browser = Browser {
            client,
            session: String::new(),
            driver,
            _profile: profile,
        };
        let created = browser
            .call(
                reqwest::Method::POST,
                &format!("{base}/session"),
                capabilities,
            )
            .await;
        browser.session = format!(
            "{base}/session/{}",
            created["sessionId"].as_str().expect("a session id")
        );
        Some(browser)
    }

    async fn call(&self, method: reqwest::Method, url: &str, body: Value) -> Value {
        let request = self.client.request(method.clone(), url);
        let request = if method == reqwest::Method::GET {
            request
        } else {
            request.json(&body)
        };
        let response = request.send().await.expect("webdriver answers");
        let status = response.status();
        let value: Value = response.json().await.expect("webdriver JSON");
        assert!(status.is_success(), "webdriver {url}: {status} {value}");
        value["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        self.call(reqwest::Method::POST, &url, body).await
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.session);
        self.call(reqwest::Method::GET, &url, Value::Null).await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs an async `script` whose last argument is the callback to call with the result.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args }))
            .await
    }

    /// Elements matching a CSS selector now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (up to `timeout`) for an element matching `css`, saving a screenshot named after
    /// the selector under `target/browser-failures/` when none appears.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                return element;
            }
            if Instant::now() > deadline {
                let name: String = css
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let path = failure_dir().join(format!("{name}.png"));
                self.screenshot(&path).await;
                panic!(
                    "no element {css} within {timeout:?}; screenshot in {}; page text: {}",
                    path.display(),
                    self.text_of_page().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` (a function body) returns something truthy; returns it.
    pub async fn wait_until(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.execute(script, vec![]).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let path = failure_dir().join(format!("{}.png", what.replace(' ', "_")));
                self.screenshot(&path).await;
                panic!(
                    "{what}: not within {timeout:?}; screenshot in {}; page text: {}",
                    path.display(),
                    self.text_of_page().await
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The visible text of the page.
    pub async fn text_of_page(&self) -> String {
        self.execute(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Clicks `element`.
    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Types `text` into `element` (a file input takes a path).
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    /// Drags the mouse across `element` from `from` to `to`, offsets in CSS pixels from its
    /// centre.
    pub async fn drag(&self, element: &Element, from: (i64, i64), to: (i64, i64)) {
        let origin = json!({ ELEMENT: element.0 });
        let actions = json!({ "actions": [{
            "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
            "actions": [
                { "type": "pointerMove", "origin": origin, "x": from.0, "y": from.1 },
                { "type": "pointerDown", "button": 0 },
                { "type": "pointerMove", "origin": origin, "x": (from.0 + to.0) / 2, "y": (from.1 + to.1) / 2, "duration": 50 },
                { "type": "pointerMove", "origin": origin, "x": to.0, "y": to.1, "duration": 50 },
                { "type": "pointerUp", "button": 0 },
            ],
        }]});
        self.post("/actions", actions).await;
    }

    /// Clears an input.
    pub async fn clear(&self, element: &Element) {
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await;
    }

    /// The element's visible text.
    pub async fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a PNG of the window to `path` (directories created).
    pub async fn screenshot(&self, path: &Path) {
        let data = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Browser console entries since the last call (`level`, `message`).
    pub async fn console_log(&self) -> Vec<(String, String)> {
        let entries = self.post("/se/log", json!({ "type": "browser" })).await;
        entries
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_owned(),
                            e["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Browser {
    /// Ends the session (closing Chromium) and the driver.
    pub async fn quit(self) {
        let _ = self.client.delete(self.session.as_str()).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where failure screenshots go: `target/browser-failures/`.
pub fn failure_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-failures")
}
