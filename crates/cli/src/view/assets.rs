//! The page's files, embedded in the binary (so `cargo build` needs no node
//! and the page needs no network): our `index.html`, `viewer.js`,
//! `viewer.css`, and the vendored Spark and three.js modules with their
//! licences (`web_assets/vendor/`, refreshed by
//! `web_assets/update-vendor.sh`).

/// (URL path, content type, bytes) of every static asset.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("/", HTML, include_bytes!("web_assets/index.html")),
    ("/index.html", HTML, include_bytes!("web_assets/index.html")),
    ("/viewer.js", JS, include_bytes!("web_assets/viewer.js")),
    (
        "/viewer.css",
        "text/css; charset=utf-8",
        include_bytes!("web_assets/viewer.css"),
    ),
    (
        "/vendor/three.module.min.js",
        JS,
        include_bytes!("web_assets/vendor/three.module.min.js"),
    ),
    (
        "/vendor/three.core.min.js",
        JS,
        include_bytes!("web_assets/vendor/three.core.min.js"),
    ),
    (
        "/vendor/addons/postprocessing/Pass.js",
        JS,
        include_bytes!("web_assets/vendor/addons/postprocessing/Pass.js"),
    ),
    (
        "/vendor/spark.module.min.js",
        JS,
        include_bytes!("web_assets/vendor/spark.module.min.js"),
    ),
    (
        "/vendor/LICENSE-spark",
        TEXT,
        include_bytes!("web_assets/vendor/LICENSE-spark"),
    ),
    (
        "/vendor/LICENSE-three",
        TEXT,
        include_bytes!("web_assets/vendor/LICENSE-three"),
    ),
    (
        "/vendor/VERSIONS",
        TEXT,
        include_bytes!("web_assets/vendor/VERSIONS"),
    ),
];

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// The asset at `path`, if there is one.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|a| a.0 == path)
        .map(|&(_, ty, bytes)| (ty, bytes))
}
