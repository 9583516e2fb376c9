//! `chainrule view`'s server: the page, assets and model are served; path
//! traversal, unknown routes, other methods, oversized and malformed
//! requests and foreign Host headers get a 4xx; several clients at once and
//! a stalled one do not block others; bad files exit 2.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use splat::three::ply::{parse_ply, to_ply_bytes};
use splat::three::scene::{random_scene, RandomScene};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-view-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` and reads its first line of stdout
/// (the process is killed when the `Server` is dropped).
fn spawn_with_first_line(args: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server {
        child,
        addr: String::new(),
    };
    (server, line)
}

fn start(args: &[&str]) -> Server {
    let mut all = vec!["view"];
    all.extend(args);
    all.extend(["--port", "0"]);
    let (mut server, line) = spawn_with_first_line(&all);
    server.addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    server
}

/// Sends raw bytes, returns (status, body).
fn raw(addr: &str, request: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| resp[i + 4..].to_vec())
        .unwrap_or_default();
    (status, body)
}

fn get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

fn scene_file(dir: &std::path::Path) -> (PathBuf, Vec<u8>) {
    let g = random_scene::<f32>(&RandomScene {
        n: 200,
        ..Default::default()
    });
    let p = dir.join("scene.ply");
    let bytes = to_ply_bytes(&g);
    std::fs::write(&p, &bytes).unwrap();
    (p, bytes)
}

/// Runs the binary to completion with `args`.
fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn serves_the_page_assets_and_model() {
    let dir = tmp("ok");
    let (scene, _) = scene_file(&dir);
    let s = start(&[scene.to_str().unwrap()]);
    let (st, page) = get(&s.addr, "/");
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&page).contains("viewer.js"));
    for asset in [
        "/viewer.js",
        "/vendor/spark.module.min.js",
        "/vendor/three.module.min.js",
        "/vendor/LICENSE-spark",
    ] {
        let (st, body) = get(&s.addr, asset);
        assert_eq!(st, 200, "{asset}");
        assert!(!body.is_empty());
    }
    let (st, info) = get(&s.addr, "/info.json");
    assert_eq!(st, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["splats"], 200);
    assert_eq!(info["kind"], "3d");
    let (st, model) = get(&s.addr, "/model.ply?v=0");
    assert_eq!(st, 200);
    assert_eq!(parse_ply::<f32>(&model, "m".as_ref()).unwrap().len(), 200);
    let (st, head) = raw(
        &s.addr,
        format!("HEAD / HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes(),
    );
    assert_eq!((st, head.len()), (200, 0));
}

#[test]
fn refuses_what_it_should_with_4xx() {
    let dir = tmp("bad");
    let (scene, _) = scene_file(&dir);
    let s = start(&[scene.to_str().unwrap()]);
    let a = s.addr.clone();
    for (path, want) in [
        ("/../../etc/passwd", 400),
        ("/vendor/../viewer.js", 400),
        ("/%2e%2e/etc/passwd", 400),
        ("/nope", 404),
        ("/scene.ply", 404),
        ("/fit.png", 404),
    ] {
        assert_eq!(get(&a, path).0, want, "{path}");
    }
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            format!("POST / HTTP/1.1\r\nHost: {a}\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            405,
        ),
        (
            format!("DELETE /model.ply HTTP/1.1\r\nHost: {a}\r\n\r\n").into_bytes(),
            405,
        ),
        (b"garbage\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1 extra\r\n\r\n".to_vec(), 400),
        (
            format!("GET / HTTP/1.1\r\nHost: {a}\r\nContent-Length: 5\r\n\r\nhello").into_bytes(),
            400,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: {a}\r\nX: {}\r\n\r\n",
                "a".repeat(20_000)
            )
            .into_bytes(),
            431,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_vec(),
            403,
        ),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 403),
        (vec![0xff, 0xfe, b'\r', b'\n', b'\r', b'\n'], 400),
        (
            b"GET http://example.com/ HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(
            raw(&a, &req).0,
            want,
            "{:?}",
            String::from_utf8_lossy(&req[..req.len().min(60)])
        );
    }
    // still serving after all that
    assert_eq!(get(&a, "/info.json").0, 200);
}

#[test]
fn several_clients_and_a_stalled_one() {
    let dir = tmp("many");
    let (scene, bytes) = scene_file(&dir);
    let s = start(&[scene.to_str().unwrap()]);
    // a client that connects and sends nothing must not block the others
    let _stalled = TcpStream::connect(&s.addr).unwrap();
    let mut half = TcpStream::connect(&s.addr).unwrap();
    half.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let a = s.addr.clone();
            std::thread::spawn(move || get(&a, "/model.ply"))
        })
        .collect();
    for t in threads {
        let (st, body) = t.join().unwrap();
        assert_eq!(st, 200);
        assert_eq!(body, bytes);
    }
}

#[test]
fn bad_files_exit_2_with_a_message() {
    let dir = tmp("files");
    let broken = dir.join("broken.ply");
    std::fs::write(&broken, b"ply\nformat ascii 1.0\nend_header\n").unwrap();
    let not_fit = dir.join("gaussians.json");
    std::fs::write(&not_fit, b"{\"nope\": 1}").unwrap();
    for p in [broken, not_fit, dir.join("missing.spz"), dir.clone()] {
        let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
            .arg("view")
            .arg(&p)
            .args(["--port", "0"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{p:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("error: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_2d_fit_is_rendered_at_the_zoom_asked() {
    let dir = tmp("fit");
    let fit = dir.join("fit");
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args([
            "fit",
            "--gaussians",
            "50",
            "--iters",
            "2",
            "--size",
            "32",
            "--json",
            "--out",
        ])
        .arg(&fit)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = start(&[fit.join("gaussians.json").to_str().unwrap()]);
    let (st, info) = get(&s.addr, "/info.json");
    assert_eq!(st, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["kind"], "2d");
    let (w, h) = (
        info["width"].as_u64().unwrap() as u32,
        info["height"].as_u64().unwrap() as u32,
    );
    let (st, png) = get(&s.addr, "/fit.png?scale=3");
    assert_eq!(st, 200);
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (3 * w, 3 * h));
    assert_eq!(get(&s.addr, "/fit.png?scale=1e9").0, 400);
    assert_eq!(get(&s.addr, "/fit.png?scale=abc").0, 400);
    assert_eq!(get(&s.addr, "/model.ply").0, 404);
    drop(s);
    // a 2D fit's page needs the server: --export says so, exit 2
    let site = dir.join("site");
    let fit_json = fit.join("gaussians.json");
    let o = cli(&[
        "view",
        fit_json.to_str().unwrap(),
        "--export",
        site.to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--export") && e.contains("2D fit"), "{e}");
    assert!(!site.exists());
}

#[test]
fn export_writes_the_page_as_a_static_site() {
    let dir = tmp("export");
    let (scene, _) = scene_file(&dir);
    let site = dir.join("site");
    let (scene, site_s) = (scene.to_str().unwrap(), site.to_str().unwrap());
    let o = cli(&["view", scene, "--export", site_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("http.server"));
    // every asset the server has, byte for byte, the page's URLs all
    // relative (a site may live below a sub-path)
    for &(path, _, bytes) in chainrule_cli::view::assets::ASSETS {
        let file = if path == "/" {
            "index.html"
        } else {
            &path[1..]
        };
        assert_eq!(std::fs::read(site.join(file)).unwrap(), bytes, "{file}");
    }
    for file in ["index.html", "viewer.js"] {
        let text = std::fs::read_to_string(site.join(file)).unwrap();
        // a quote, then `/` and a name: an absolute URL such as "/info.json"
        let b = text.as_bytes();
        let absolute = b.windows(3).position(|w| {
            matches!(w[0], b'"' | b'\'' | b'`') && w[1] == b'/' && w[2].is_ascii_alphabetic()
        });
        if let Some(i) = absolute {
            panic!(
                "{file} has an absolute URL: {}",
                &text[i..(i + 30).min(text.len())]
            );
        }
    }
    // the scene as the server would answer: not live, every splat, and
    // no cameras without a dataset
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("info.json")).unwrap()).unwrap();
    assert_eq!(
        (
            &info["kind"],
            &info["live"],
            &info["splats"],
            &info["cameras"]
        ),
        (
            &serde_json::json!("3d"),
            &serde_json::json!(false),
            &serde_json::json!(200),
            &serde_json::json!(false)
        )
    );
    assert_eq!(info["model"], "model.ply");
    let model = std::fs::read(site.join("model.ply")).unwrap();
    assert_eq!(parse_ply::<f32>(&model, "m".as_ref()).unwrap().len(), 200);
    // the model as .spz: named in info.json, decodes to the same splats
    let spz_site = dir.join("site-spz");
    let spz_s = spz_site.to_str().unwrap();
    let o = cli(&["view", scene, "--export-format", "spz", "--export", spz_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spz_site.join("info.json")).unwrap()).unwrap();
    assert_eq!(info["model"], "model.spz");
    assert!(!spz_site.join("model.ply").exists());
    let spz = std::fs::read(spz_site.join("model.spz")).unwrap();
    let back = splat::formats::decode_scene(&spz, splat::formats::SceneFormat::Spz, "m".as_ref());
    assert_eq!(back.unwrap().len(), 200);
    let cams: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("cameras.json")).unwrap()).unwrap();
    assert_eq!(cams, serde_json::json!([]));
    // someone else's info.json beside a scene file does not make it a site
    std::fs::write(dir.join("info.json"), r#"{"name": "not ours"}"#).unwrap();
    let plain = dir.join("site-plain");
    let o = cli(&["view", scene, "--export", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(dir.join("info.json")).unwrap();
    // --export-format alone would be silently dropped: a usage error
    let o = cli(&["view", scene, "--export-format", "spz"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--export"));
    // --export is not a server: --port with it is a usage error
    let other = dir.join("other");
    let o = cli(&[
        "view",
        scene,
        "--port",
        "9000",
        "--export",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_train_folder_brings_its_settings() {
    let dir = tmp("trainfolder");
    let data = dir.join("data");
    let o = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args([
            "synth",
            data.to_str().unwrap(),
            "--views",
            "2",
            "--test-views",
            "1",
            "--size",
            "16",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let (_, _) = scene_file(&run);
    std::fs::rename(run.join("scene.ply"), run.join("point_cloud.ply")).unwrap();
    let s = chainrule_cli::settings::RenderSettings {
        format: "chainrule-render-settings".into(),
        version: 1,
        background: [0.0, 0.0, 0.0],
        sh_degree: 3,
        antialiased: true,
        dataset_kind: "nerf-synthetic".into(),
        dataset: Some(data.clone()),
        up: [0.0, 1.0, 0.0],
        center: [0.0; 3],
        radius: 4.0,
        elevation_deg: 30.0,
        facing: None,
        downscale: None,
        invert_masks: false,
        exposure: false,
    };
    s.write(&run).unwrap();
    let srv = start(&[run.to_str().unwrap()]);
    let (_, info) = get(&srv.addr, "/info.json");
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["background"], serde_json::json!([0.0, 0.0, 0.0]));
    assert_eq!(info["antialiased"], true);
    assert_eq!(info["up"], serde_json::json!([0.0, 1.0, 0.0]));
    assert_eq!(info["cameras"], true, "the dataset named in settings.json");
    let (_, cams) = get(&srv.addr, "/cameras.json");
    let cams: serde_json::Value = serde_json::from_slice(&cams).unwrap();
    assert_eq!(cams.as_array().unwrap().len(), 3);
    drop(srv);
    exported_site_keeps_the_settings_and_cameras(&dir, &run, &s);
}

/// A site exported from a train folder: its settings.json (the dataset's
/// path left out) frames `render` as the folder does, `view` of the site
/// serves its cameras, and a re-export in another format replaces the
/// model.
fn exported_site_keeps_the_settings_and_cameras(
    dir: &std::path::Path,
    run: &std::path::Path,
    s: &chainrule_cli::settings::RenderSettings,
) {
    let site = dir.join("site");
    let (run_s, site_s) = (run.to_str().unwrap(), site.to_str().unwrap());
    let o = cli(&["view", run_s, "--export", site_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let saved = chainrule_cli::settings::RenderSettings::read(&site.join("settings.json"));
    let want = s.clone().without_dataset();
    assert_eq!((want.version, &want.dataset), (2, &None));
    assert_eq!(saved.unwrap(), want);
    let text = std::fs::read_to_string(site.join("settings.json")).unwrap();
    assert!(
        !text.contains(dir.to_str().unwrap()),
        "no local path: {text}"
    );
    // the site and the train folder orbit alike: same centre, up, radius,
    // background and antialiasing, so the same pixels
    let orbit = |scene: &str, out: &str| {
        let out = dir.join(out);
        let args = ["render", scene, "--orbit", "2", "--size", "24x20"];
        let o = cli(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out.join("view_001.png")).unwrap()
    };
    assert_eq!(orbit(site_s, "o-site"), orbit(run_s, "o-run"));
    // the site's model downloaded alone carries the settings too
    let alone = dir.join("downloaded.ply");
    std::fs::copy(site.join("model.ply"), &alone).unwrap();
    assert_eq!(
        orbit(alone.to_str().unwrap(), "o-alone"),
        orbit(run_s, "o-run")
    );
    // and without them (the splats alone) it is framed otherwise
    let generic = dir.join("bare.ply");
    let g = splat::formats::read_scene(&site.join("model.ply")).unwrap();
    std::fs::write(&generic, to_ply_bytes(&g)).unwrap();
    assert_ne!(
        orbit(generic.to_str().unwrap(), "o-bare"),
        orbit(run_s, "o-run")
    );
    // view of the site: the cameras it was exported with
    let srv = start(&[site_s]);
    let (_, cams) = get(&srv.addr, "/cameras.json");
    let cams: serde_json::Value = serde_json::from_slice(&cams).unwrap();
    assert_eq!(cams.as_array().unwrap().len(), 3);
    drop(srv);
    // .spz over the PLY site: one model left, the one info.json names
    let o = cli(&["view", run_s, "--export", site_s, "--export-format", "spz"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(site.join("model.spz").is_file() && !site.join("model.ply").exists());
    // --path: the site has no dataset, but its cameras.json flies
    let flight = site.with_file_name("site-flight");
    let o = cli(&[
        "render",
        site_s,
        "--path",
        "3",
        "--out",
        flight.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(flight.join("path_002.png").is_file());
    // a bare scene over the site: the old settings go (they framed another
    // scene), and render takes the page's background from info.json
    let bare = generic.to_str().unwrap();
    let o = cli(&["view", bare, "--export", site_s, "--background", "1,0,0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!site.join("settings.json").exists() && !site.join("model.spz").exists());
    orbit(site_s, "o-red");
    let png = image::open(dir.join("o-red").join("view_000.png")).unwrap();
    assert_eq!(
        png.to_rgb8().get_pixel(0, 0).0,
        [255, 0, 0],
        "the page's background"
    );
    // with none given, a bare scene's page takes render's rule: the
    // dataset kind's background (white for NeRF-synthetic data, black with
    // no dataset), so a shared site draws as `render` draws the file
    let data = s.dataset.as_ref().unwrap().to_str().unwrap();
    for (extra, want) in [(&[][..], [0.0; 3]), (&["--data", data][..], [1.0; 3])] {
        let o = cli(&[&["view", bare, "--export", site_s][..], extra].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let info = std::fs::read(site.join("info.json")).unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
        assert_eq!(info["background"], serde_json::json!(want), "{extra:?}");
    }
    // a bare .spz's site keeps its format unless told (not a PLY 13 times
    // its size)
    let spz = dir.join("bare.spz");
    let o = cli(&[
        "export",
        bare,
        "--format",
        "spz",
        "--out",
        spz.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spz_site = dir.join("site-spz");
    let o = cli(&[
        "view",
        spz.to_str().unwrap(),
        "--export",
        spz_site.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(spz_site.join("model.spz").is_file() && !spz_site.join("model.ply").exists());
    // never into a train folder: its settings.json would lose the dataset
    let o = cli(&["view", run_s, "--export", run_s]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("train") && run.join("settings.json").is_file(),
        "{e}"
    );
    assert!(!run.join("index.html").exists());
    // a broken info.json is named, with what is wrong
    std::fs::write(site.join("info.json"), r#"{"model": "model.spz"}"#).unwrap();
    let o = cli(&["render", site_s, "--orbit", "2", "--out", site_s]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("model.spz") && e.contains("info.json"), "{e}");
    // a folder that is neither a train output nor a site: named
    let o = cli(&[
        "render",
        dir.to_str().unwrap(),
        "--orbit",
        "2",
        "--out",
        site_s,
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("point_cloud.ply") && e.contains("info.json"),
        "{e}"
    );
}

/// An original 3DGS model folder (`cameras.json`, `cfg_args`,
/// `point_cloud/iteration_N/point_cloud.ply`): `view` serves its latest
/// scene with its cameras, their mean up and `cfg_args`'s background, and
/// `--export` gives the site that framing, so `render` of the site draws
/// what `render` of the folder draws.
#[test]
fn an_original_3dgs_model_folder_brings_its_cameras() {
    let dir = tmp("inria");
    let model = dir.join("model");
    let it = model.join("point_cloud").join("iteration_30000");
    std::fs::create_dir_all(&it).unwrap();
    let (scene, bytes) = scene_file(&dir);
    std::fs::rename(&scene, it.join("point_cloud.ply")).unwrap();
    // three cameras at uneven angles 4 from the origin, raised 1 along the
    // world's up (−y), looking at it; the image's down is as near world
    // +y as looking down allows
    let unit = |a: [f64; 3]| {
        let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
        a.map(|x| x / n)
    };
    let cross = |a: [f64; 3], b: [f64; 3]| {
        [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ]
    };
    let mut up = [0.0; 3];
    let cams: Vec<serde_json::Value> = [("b", 0.2f64), ("a", 1.9), ("c", 4.0)]
        .iter()
        .map(|&(name, t)| {
            let p = [4.0 * t.cos(), -1.0, 4.0 * t.sin()];
            let fwd = unit(p.map(|x| -x));
            let right = unit(cross(fwd, [0.0, -1.0, 0.0]));
            let down = cross(fwd, right);
            (0..3).for_each(|i| up[i] -= down[i]);
            let rotation = [0, 1, 2].map(|i| [right[i], down[i], fwd[i]]);
            serde_json::json!({
                "id": 0, "img_name": name, "width": 40, "height": 30, "fx": 30.0, "fy": 30.0,
                "position": p, "rotation": rotation,
            })
        })
        .collect();
    let up = unit(up);
    std::fs::write(
        model.join("cameras.json"),
        serde_json::to_string(&cams).unwrap(),
    )
    .unwrap();
    std::fs::write(
        model.join("cfg_args"),
        "Namespace(sh_degree=3, white_background=True)",
    )
    .unwrap();
    let srv = start(&[model.to_str().unwrap()]);
    let (_, model_bytes) = get(&srv.addr, "/model.ply");
    let means = |b: &[u8]| parse_ply::<f32>(b, "m".as_ref()).unwrap().means;
    assert_eq!(means(&model_bytes), means(&bytes));
    let (_, info) = get(&srv.addr, "/info.json");
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["background"], serde_json::json!([1.0, 1.0, 1.0]));
    for (k, want) in up.iter().enumerate() {
        let got = info["up"][k].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{} against {up:?}", info["up"]);
    }
    assert_eq!(info["cameras"], true);
    let (_, served) = get(&srv.addr, "/cameras.json");
    let served: serde_json::Value = serde_json::from_slice(&served).unwrap();
    let names: Vec<&str> = served
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"], "sorted by photo name");
    drop(srv);
    // exporting into the model folder would replace its cameras.json
    let before = std::fs::read(model.join("cameras.json")).unwrap();
    let m = model.to_str().unwrap();
    let o = cli(&["view", m, "--export", m]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("original 3DGS"));
    assert_eq!(std::fs::read(model.join("cameras.json")).unwrap(), before);
    let site = dir.join("site");
    let o = cli(&["view", m, "--export", site.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let orbit = |scene: &std::path::Path, out: &str| {
        let out = dir.join(out);
        let args = ["render", scene.to_str().unwrap(), "--orbit", "2"];
        let o = cli(&[
            &args[..],
            &["--size", "24x20", "--out", out.to_str().unwrap()],
        ]
        .concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out.join("view_001.png")).unwrap()
    };
    assert_eq!(orbit(&site, "o-site"), orbit(&model, "o-model"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--export` into a folder of other files (a dataset, a project) is
/// refused, writing nothing; an empty folder or an earlier site is fine.
#[test]
fn export_refuses_a_folder_of_other_files() {
    let dir = tmp("export-other");
    let (scene, _) = scene_file(&dir);
    let busy = dir.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let (scene, busy_s) = (scene.to_str().unwrap(), busy.to_str().unwrap());
    let o = cli(&["view", scene, "--export", busy_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("other files"));
    assert!(!busy.join("index.html").exists());
    // the errors about --export's folder name it, in JSON too, and a file
    // there is said to be the wrong --export
    let file = busy.join("notes.txt");
    for (at, want) in [
        (busy_s, "other files"),
        (file.to_str().unwrap(), "is a file"),
    ] {
        let o = cli(&["view", scene, "--export", at, "--json"]);
        assert_eq!(o.status.code(), Some(2));
        let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(e["path"].as_str(), Some(at), "{e}");
        let msg = e["error"].as_str().unwrap();
        assert!(msg.contains("--export") && msg.contains(want), "{e}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for _ in 0..2 {
        let o = cli(&["view", scene, "--export", empty.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// `train --view --json`: the report names the viewer's address, where
/// the final scene is still served after the report.
#[test]
fn train_view_json_reports_the_viewer() {
    let d = tmp("train-view-json");
    let data = d.join("data");
    let o = cli(&[
        "synth",
        data.to_str().unwrap(),
        "--size",
        "24",
        "--views",
        "4",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = d.join("out");
    let (server, line) = spawn_with_first_line(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--iters",
        "3",
        "--init-points",
        "50",
        "--json",
        "--view",
        "--port",
        "0",
    ]);
    let report: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
    let url = report["viewer"]
        .as_str()
        .unwrap_or_else(|| panic!("{report}"));
    let addr = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{url}"));
    let (status, body) = get(addr, "/info.json");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        info["splats"].as_u64(),
        report["gaussians"].as_u64(),
        "{info}"
    );
    drop(server);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn on_every_interface_it_prints_addresses_to_open() {
    let dir = tmp("any");
    let (scene, _) = scene_file(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(["view", scene.to_str().unwrap(), "--host", "0.0.0.0"])
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let server = Server {
        child,
        addr: String::new(),
    };
    assert!(first.starts_with("viewer at http://0.0.0.0:"), "{first}");
    // the loopback address it names serves the page
    let here = second
        .split("open http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address to open in {second:?}"));
    assert!(here.starts_with("127.0.0.1:"), "{second}");
    assert_eq!(get(here, "/").0, 200);
    drop(server);
}
