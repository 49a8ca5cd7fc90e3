//! The web console: how it is served, and user journeys clicked through in a headless Chromium.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use test_support::browser::Browser;
use test_support::data::{imagefolder_zip, png, yolo_zip};
use test_support::{TestApp, spawn_app, spawn_app_with, with_sam3};

#[tokio::test]
async fn the_console_is_served_compressed_with_a_strict_policy() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(app.url("/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("GET /");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["content-encoding"], "gzip");
    // reqwest here does not decompress: read the asset prefix from a plain request.
    let html = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .expect("GET /")
        .text()
        .await
        .unwrap_or_default();
    assert!(!html.contains("{{BASE}}"));
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a module script");
    assert!(
        script.starts_with("/console/") && script.ends_with("/js/main.js"),
        "{script}"
    );
    let asset = app.client.get(app.url(script)).send().await.expect("asset");
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/javascript")
    );
    let missing = app
        .client
        .get(app.url("/console/x/js/nothing.js"))
        .send()
        .await
        .expect("missing asset");
    assert_eq!(missing.status(), 404);

    let off = spawn_app_with(|s| s.console.enabled = false).await;
    let none = off.client.get(off.url("/")).send().await.expect("GET /");
    assert_eq!(none.status(), 404, "console.enabled = false serves no page");
}

/// Where the README's screenshots are written.
fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../docs/screenshots/{name}.png"))
}

const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(15);

/// Every resource the page loaded came from the server's own origin.
async fn assert_same_origin(browser: &Browser) {
    let foreign = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)
                .filter(n => !n.startsWith(location.origin) && !n.startsWith('ws://' + location.host))",
            vec![],
        )
        .await;
    assert_eq!(foreign, Value::Array(vec![]), "requests to other origins");
}

/// No script errors in the browser console (failed requests the test provoked aside).
async fn assert_no_script_errors(browser: &Browser) {
    let errors: Vec<_> = browser
        .console_log()
        .await
        .into_iter()
        .filter(|(level, message)| {
            level == "SEVERE" && !message.contains("Failed to load resource")
        })
        .collect();
    assert!(errors.is_empty(), "browser console errors: {errors:?}");
}

/// The page is no wider than the window.
async fn assert_no_sideways_scroll(browser: &Browser, what: &str) {
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await;
    assert!(
        overflow.as_f64().unwrap_or(1.0) <= 0.0,
        "{what} scrolls sideways by {overflow} px"
    );
}

async fn click(browser: &Browser, css: &str) {
    let element = browser.wait_for(css, SHORT).await;
    browser.click(&element).await;
}

async fn type_in(browser: &Browser, css: &str, text: &str) {
    let element = browser.wait_for(css, SHORT).await;
    browser.clear(&element).await;
    browser.type_into(&element, text).await;
}

#[tokio::test]
async fn a_new_user_uploads_trains_and_predicts_in_the_browser() {
    let Some(browser) = Browser::start(1280, 900, "en-US").await else {
        return;
    };
    // Progress every 50 ms, so the chart is seen growing while the run trains.
    let app = spawn_app_with(|s| s.training.progress_interval_millis = 50).await;
    browser.goto(&app.url("/")).await;

    // Register (which signs in); Enter submits the form.
    click(&browser, "[data-testid=login-tab-register]").await;
    type_in(&browser, "[data-testid=login-name]", "Ada").await;
    type_in(&browser, "[data-testid=login-email]", "ada@example.com").await;
    type_in(
        &browser,
        "[data-testid=login-password]",
        "correct horse battery\u{E007}",
    )
    .await;
    browser.wait_for("[data-testid=nav-datasets]", SHORT).await;

    // Upload an ImageFolder zip and wait for it to be ready.
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("shapes.zip");
    std::fs::write(&zip, imagefolder_zip(&["circle", "square"], 12)).expect("zip written");
    click(&browser, "[data-testid=nav-datasets]").await;
    let input = browser.wait_for("[data-testid=upload-input]", SHORT).await;
    browser.type_into(&input, &zip.display().to_string()).await;
    type_in(&browser, "[data-testid=upload-name]", "shapes").await;
    click(&browser, "[data-testid=upload-submit]").await;
    browser
        .wait_for("[data-testid=dataset-status][data-status=ready]", LONG)
        .await;
    browser.screenshot(&screenshot("datasets")).await;

    // The dataset page: histogram and the image browser with thumbnails that loaded.
    click(&browser, "[data-testid=dataset-link]").await;
    browser
        .wait_for("[data-testid=class-histogram]", SHORT)
        .await;
    browser
        .wait_until(
            "thumbnails loaded",
            "const imgs = [...document.querySelectorAll('[data-testid=browser-item] img')];
             return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0) && imgs.length",
            SHORT,
        )
        .await;
    browser.screenshot(&screenshot("dataset")).await;
    // A click opens the image large; Esc closes it.
    click(&browser, "[data-testid=browser-item]").await;
    let dialog = browser
        .wait_for("[data-testid=item-dialog][open]", SHORT)
        .await;
    browser.type_into(&dialog, "\u{E00C}").await;
    browser
        .wait_until(
            "Esc closes the dialog",
            "return !document.querySelector('[data-testid=item-dialog][open]')",
            SHORT,
        )
        .await;

    // Chat to a configuration, then start it.
    click(&browser, "[data-testid=nav-chat]").await;
    type_in(
        &browser,
        "[data-testid=chat-input]",
        "Train a small_cnn to classify circle and square for 40 epochs",
    )
    .await;
    click(&browser, "[data-testid=chat-send]").await;
    browser
        .wait_for("[data-testid=chat-message-assistant]", SHORT)
        .await;
    let start = browser.find_all("[data-testid=chat-start]").await;
    if start.is_empty() {
        type_in(
            &browser,
            "[data-testid=chat-input]",
            "use the shapes dataset",
        )
        .await;
        click(&browser, "[data-testid=chat-send]").await;
    }
    browser.wait_for("[data-testid=chat-config]", SHORT).await;
    browser.screenshot(&screenshot("chat")).await;
    click(&browser, "[data-testid=chat-start]").await;
    browser
        .wait_for("[data-testid=workflow-detail-status]", SHORT)
        .await;
    // The loss chart gains points from the WebSocket while the run trains.
    let seen = browser
        .wait_until(
            "a chart while training",
            "const s = document.querySelector('[data-testid=workflow-detail-status]');
             const c = document.querySelector('[data-testid=chart-loss]');
             return s && s.dataset.status === 'training' && c && +c.dataset.points > 0 && +c.dataset.points",
            LONG,
        )
        .await;
    browser
        .wait_until(
            "more points from the socket",
            &format!(
                "return +document.querySelector('[data-testid=chart-loss]').dataset.points > {seen}"
            ),
            LONG,
        )
        .await;
    browser
        .wait_for(
            "[data-testid=workflow-detail-status][data-status=completed]",
            LONG,
        )
        .await;
    browser
        .wait_for("[data-testid=chart-loss] canvas", SHORT)
        .await;
    browser.screenshot(&screenshot("workflow")).await;

    // Predict on one of the images.
    let image = dir.path().join("circle.png");
    std::fs::write(&image, test_support::data::png(32, 32, [230, 30, 30])).expect("png");
    click(&browser, "[data-testid=workflow-predict]").await;
    let input = browser.wait_for("[data-testid=predict-input]", SHORT).await;
    browser
        .type_into(&input, &image.display().to_string())
        .await;
    click(&browser, "[data-testid=predict-submit]").await;
    let result = browser
        .wait_for("[data-testid=predict-classes]", LONG)
        .await;
    let text = browser.text(&result).await;
    assert!(text.contains("circle") || text.contains("square"), "{text}");
    browser.screenshot(&screenshot("predict")).await;

    // Korean.
    click(&browser, "[data-testid=lang-switch] option[value=ko]").await;
    browser
        .wait_until(
            "Korean navigation",
            "return document.querySelector('[data-testid=nav-datasets]').innerText.includes('데이터셋')",
            SHORT,
        )
        .await;
    click(&browser, "[data-testid=nav-models]").await;
    browser.wait_for("[data-testid=model-card]", SHORT).await;
    browser.screenshot(&screenshot("models-ko")).await;

    assert_no_sideways_scroll(&browser, "the model list at 1280 px").await;
    assert_same_origin(&browser).await;
    assert_no_script_errors(&browser).await;
    browser.quit().await;
}

/// Registers a fresh user through the login page.
async fn register(browser: &Browser, app: &TestApp, email: &str) {
    browser.goto(&app.url("/")).await;
    click(browser, "[data-testid=login-tab-register]").await;
    type_in(browser, "[data-testid=login-name]", "Kim").await;
    type_in(browser, "[data-testid=login-email]", email).await;
    type_in(
        browser,
        "[data-testid=login-password]",
        "correct horse battery",
    )
    .await;
    click(browser, "[data-testid=login-submit]").await;
    browser.wait_for("[data-testid=nav-datasets]", SHORT).await;
}

/// Whether the canvas matching `css` has any painted pixel.
/// (Scrolled into view first: images load lazily, as a user scrolls.)
const PAINTED: &str = "const c = document.querySelector(arguments[0]);
    if (c) c.scrollIntoView({ block: 'center' });
    if (!c || !c.width || !c.height) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
    return false;";

async fn wait_painted(browser: &Browser, css: &str) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        if browser.execute(PAINTED, vec![Value::from(css)]).await == Value::Bool(true) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let state = browser
                .execute(
                    "const c = document.querySelector(arguments[0]); if (!c) return 'no canvas';
                     const img = c.parentElement.querySelector('img');
                     return [c.width, c.height, img && img.naturalWidth, img && img.complete, img && img.src.slice(0, 80)]",
                    vec![Value::from(css)],
                )
                .await;
            let shot = test_support::browser::failure_dir().join("nothing-drawn.png");
            browser.screenshot(&shot).await;
            panic!("nothing drawn on {css}: {state}; {}", shot.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn detection_boxes_and_segmentation_masks_are_drawn() {
    let Some(browser) = Browser::start(1280, 900, "en-US").await else {
        return;
    };
    let app = spawn_app_with(with_sam3).await;
    register(&browser, &app, "kim@example.com").await;

    // A YOLO dataset: the browser's thumbnails carry their boxes.
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("boxes.zip");
    std::fs::write(&zip, yolo_zip(8)).expect("zip written");
    click(&browser, "[data-testid=nav-datasets]").await;
    let input = browser.wait_for("[data-testid=upload-input]", SHORT).await;
    browser.type_into(&input, &zip.display().to_string()).await;
    type_in(&browser, "[data-testid=upload-name]", "boxes").await;
    click(&browser, "[data-testid=upload-submit]").await;
    click(&browser, "[data-testid=dataset-status][data-status=ready]").await;
    click(&browser, "[data-testid=dataset-link]").await;
    wait_painted(&browser, "[data-testid=item-canvas]").await;
    browser.screenshot(&screenshot("dataset-boxes")).await;
    // Deleting asks first, then the dataset is gone from the list.
    browser.execute("window.scrollTo(0, 0)", vec![]).await;
    click(&browser, "[data-testid=dataset-delete]").await;
    click(&browser, "[data-testid=confirm-ok]").await;
    browser
        .wait_until(
            "the dataset is deleted",
            "return location.hash === '#/datasets' && !document.querySelector('[data-testid=dataset-row]')",
            SHORT,
        )
        .await;

    // Segmentation with the tiny SAM3: the masks are overlaid.
    let image = dir.path().join("scene.png");
    std::fs::write(&image, png(64, 48, [40, 160, 220])).expect("png");
    click(&browser, "[data-testid=nav-segment]").await;
    let input = browser.wait_for("[data-testid=segment-input]", SHORT).await;
    browser
        .type_into(&input, &image.display().to_string())
        .await;
    type_in(&browser, "[data-testid=segment-prompt]", "the blue sky").await;
    // A box dragged on the image goes with the prompt.
    let canvas = browser
        .wait_for("[data-testid=segment-box-canvas]", SHORT)
        .await;
    browser
        .wait_until(
            "the preview is shown",
            "const c = document.querySelector('[data-testid=segment-box-canvas]');
             return c && c.width > 0",
            SHORT,
        )
        .await;
    browser.drag(&canvas, (-80, -60), (60, 40)).await;
    browser
        .wait_for("[data-testid=segment-clear-box]", SHORT)
        .await;
    browser
        .wait_for("[data-testid=segment-submit]:not([disabled])", LONG)
        .await;
    click(&browser, "[data-testid=segment-submit]").await;
    browser
        .wait_for("[data-testid=segment-status][data-status=done]", LONG)
        .await;
    wait_painted(&browser, "[data-testid=mask-overlay]").await;
    browser.screenshot(&screenshot("segment")).await;
    assert_same_origin(&browser).await;
    assert_no_script_errors(&browser).await;
    browser.quit().await;
}

#[tokio::test]
async fn the_console_is_light_and_fits_a_phone() {
    let Some(browser) = Browser::start(390, 844, "ko-KR").await else {
        return;
    };
    let app = spawn_app().await;
    browser.goto(&app.url("/")).await;
    browser.wait_for("[data-testid=login-form]", SHORT).await;
    let width = browser.execute("return window.innerWidth", vec![]).await;
    assert_eq!(width, 390, "the phone's viewport");
    // The first page load, compressed, as the browser received it.
    let bytes = browser
        .execute(
            "const n = performance.getEntriesByType('navigation')[0];
             return performance.getEntriesByType('resource').reduce((s, e) => s + e.transferSize, n.transferSize)",
            vec![],
        )
        .await;
    let bytes = bytes.as_f64().unwrap_or(f64::MAX);
    eprintln!("first load: {bytes} bytes transferred");
    assert!(
        bytes > 1000.0 && bytes < 250_000.0,
        "first load transferred {bytes} bytes"
    );
    // Korean by default from the browser's language, and rendered with a Korean font.
    let text = browser.text_of_page().await;
    assert!(text.contains("로그인"), "{text}");
    register(&browser, &app, "park@example.com").await;
    for page in [
        "chat",
        "datasets",
        "workflows",
        "models",
        "predict",
        "segment",
        "profile",
    ] {
        browser.goto(&app.url(&format!("/#/{page}"))).await;
        browser.wait_for("main h1", SHORT).await;
        assert_no_sideways_scroll(&browser, &format!("#/{page} at 390 px")).await;
    }
    browser.screenshot(&screenshot("profile-phone-ko")).await;
    assert_no_script_errors(&browser).await;
    browser.quit().await;
}
