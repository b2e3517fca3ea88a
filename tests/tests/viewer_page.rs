//! `viewer/trace_viewer.html`, the standalone viewer in the repository, is
//! exactly what `pulse_cli::export::html::viewer_page()` produces from the
//! viewer's sources (`pulse-cli/src/export/html/`), so the two never drift.
//!
//! After changing the sources, regenerate it with
//! `PULSE_UPDATE_VIEWER=1 cargo test -p tests --test viewer_page`.

mod viewer_support;

#[test]
fn committed_standalone_viewer_is_up_to_date() {
    let path = viewer_support::repo_root().join("viewer/trace_viewer.html");
    let page = pulse_cli::export::html::viewer_page();
    if std::env::var_os("PULSE_UPDATE_VIEWER").is_some() {
        std::fs::write(&path, &page).expect("write viewer/trace_viewer.html");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == page,
        "viewer/trace_viewer.html differs from pulse_cli::export::html::viewer_page(); \
         regenerate it: PULSE_UPDATE_VIEWER=1 cargo test -p tests --test viewer_page"
    );
}

#[test]
fn standalone_viewer_embeds_no_trace_and_loads_nothing() {
    let page = pulse_cli::export::html::viewer_page();
    assert!(!page.contains("application/x-pulse-trace\" data-name"));
    assert!(page.contains("id=\"file-input\""));
    for needle in ["http://", "https://", " src=", "@import"] {
        assert!(!page.contains(needle), "the page refers to {needle}");
    }
}
