//! gRPC-Web in a real browser: the page in clients/web (TypeScript,
//! Connect's gRPC-Web transport), served here, loaded in headless Chromium
//! from another origin (CORS), lists a pair's meetings and shows a rejected
//! record's violations; the rendered DOM is checked.
//!
//! Needs Chromium (Debian: `apt-get install chromium`) and the TypeScript
//! client's packages (`cd clients/typescript && npm ci`); .ci/run installs
//! both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::{Settings, meeting, spawn_app_with};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Bundles clients/web/main.ts into clients/web/dist/main.js.
fn build_page() -> PathBuf {
    let typescript = repository().join("clients/typescript");
    assert!(
        typescript.join("node_modules/.bin/esbuild").exists(),
        "the web page needs the TypeScript client's packages: cd clients/typescript && npm ci"
    );
    let out = std::process::Command::new("npm")
        .args(["run", "--silent", "build:web"])
        .current_dir(&typescript)
        .output()
        .expect("npm runs");
    assert!(
        out.status.success(),
        "the page builds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    repository().join("clients/web")
}

fn chromium() -> String {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.to_owned();
        }
    }
    panic!("the browser test needs Chromium (Debian: apt-get install chromium)");
}

#[tokio::test]
async fn a_browser_page_lists_a_pair_and_shows_violations_over_grpc_web() {
    let page = build_page();
    let browser = chromium();

    // The page's own origin, on another port than the service's.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let html = std::fs::read_to_string(page.join("index.html")).unwrap();
    let script = std::fs::read_to_string(page.join("dist/main.js")).unwrap();
    let site = axum::Router::new()
        .route(
            "/index.html",
            axum::routing::get(move || async move { axum::response::Html(html) }),
        )
        .route(
            "/dist/main.js",
            axum::routing::get(move || async move {
                ([(http::header::CONTENT_TYPE, "text/javascript")], script)
            }),
        );
    tokio::spawn(async move { axum::serve(listener, site).await });

    let app = spawn_app_with(Settings {
        cors_allowed_origins: vec![origin.clone()],
        ..Settings::default()
    })
    .await;
    let first = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let second = app.create(meeting("2023-02-01", &["JP", "AZ"])).await;
    app.create(meeting("2023-02-02", &["DE", "FR"])).await;

    let profile = tempfile::tempdir().unwrap();
    let url = format!("{origin}/index.html?server=http://{}&a=AZ&b=JP", app.addr);
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--virtual-time-budget=15000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--dump-dom", &url])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser finishes")
    .expect("the browser runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains(r#"data-done="true""#),
        "the page finished: {dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains("2 meetings"), "{dom}");
    for id in [&first.id, &second.id] {
        assert!(
            dom.contains(&format!(r#"data-id="{id}""#)),
            "{id} listed: {dom}"
        );
    }
    assert!(dom.contains("rejected: InvalidArgument"), "{dom}");
    assert!(
        dom.contains("meeting.date: ") && dom.contains("meeting.participants[0].country_code: "),
        "the violations shown: {dom}"
    );
}
