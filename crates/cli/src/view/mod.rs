//! `chainrule view PATH [--port N] [--host ADDR] [--data DATASET] [--open]`:
//! an interactive viewer in the browser. A small HTTP server
//! ([`server`]) serves one page ([`assets`]: Spark on three.js, vendored)
//! and the scene; `chainrule train --view` serves the same page from a
//! thread beside training ([`live`]).
//!
//! Routes (GET/HEAD only): the assets; `/info.json` (what is shown, the
//! start camera, the model's version); `/model.ply` (the current 3D scene,
//! float32 PLY); `/cameras.json` (the dataset's cameras); `/stats.json`
//! (live training curves); `/fit.png?scale=S` (a 2D fit rendered at scale
//! S). `--export DIR` writes the page's URLs of a 3D scene as files
//! instead ([`ViewState::static_site`]): a static site to host and share.

pub mod assets;
pub mod live;
pub mod server;
pub mod state;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::error::{CliError, CliResult};
use crate::scene_input::{self, SceneInput};
pub use state::ViewState;

/// Default port of the viewer.
pub const DEFAULT_PORT: u16 = 8090;

/// Arguments of `chainrule view`.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The scene: a 3DGS .ply (or SuperSplat .compressed.ply), a .splat,
    /// .spz or PlayCanvas .sog file (or an unbundled SOG's meta.json or
    /// folder), a 2D fit's gaussians.json, a `train`
    /// output folder, a site folder written by --export, or a model folder
    /// of the original 3DGS.
    pub path: PathBuf,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Address to listen on. The default serves this machine only; another
    /// address exposes the scene to the network (on 0.0.0.0 or ::, every
    /// interface, a second line names the addresses to open: this
    /// machine's loopback one and its network one).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Dataset (NeRF-synthetic, COLMAP or nerfstudio) whose cameras are drawn and can
    /// be chosen as viewpoints (the page's `?camera=NAME` opens at one,
    /// the canvas at the photo's size; `&ui=0` hides the overlays, for
    /// screenshots). With or without it, the page's address follows the
    /// view (`?camera=NAME`, or `?pose=X,Y,Z,QW,QX,QY,QZ&fov=DEG` away
    /// from the cameras), so a copied link opens where it was copied.
    #[arg(long, value_name = "DATASET")]
    pub data: Option<PathBuf>,
    /// Background of the page: black, white, or R,G,B in [0, 1] (default:
    /// a training folder's, else a site's, else the dataset's kind, as
    /// `render` takes it: white for NeRF-synthetic data, black for COLMAP
    /// data or none).
    #[arg(long)]
    pub background: Option<String>,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// Write the page and the scene to this folder instead of serving
    /// them: a static site (index.html, the viewer's scripts, the model
    /// as model.ply, model.spz, model.splat, model.compressed.ply or
    /// model.sog by --export-format, info.json, cameras.json, and a training folder's settings.json
    /// without its dataset path) that any web server can host, to share
    /// the scene (browsers do not run it from file://). `render` and
    /// `view` take the folder as a scene. 3D scenes only.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["port", "host", "open"])]
    pub export: Option<PathBuf>,
    /// With --export: the model's file format. PLY keeps every value as
    /// trained; spz (quantised, SH kept) is the smallest, about 13 times
    /// smaller to download (−0.34 dB on our default capture model), sog
    /// (PlayCanvas's WebP images, SH through a palette) about eight
    /// (−0.08 dB),
    /// compressed-ply (SuperSplat's, quantised, SH kept) about four
    /// (−0.19 dB); splat drops the view-dependent colour (−0.68 dB).
    /// [default: the scene file's format (a train folder's: ply)]
    #[arg(long, value_enum, requires = "export")]
    pub export_format: Option<crate::export::ExportFormat>,
    /// Print one JSON object instead of the sentence: `{"url": ...}` (and
    /// `"lan_url"`, this machine's network address, on 0.0.0.0 or ::) on
    /// one line once the viewer listens (the server then runs on), or with
    /// --export `{"site", "model", "files", "bytes"}`. Errors are one JSON
    /// object too, `{"error": ..., "path": ...}`, with exit code 2.
    #[arg(long)]
    pub json: bool,
}

/// Loads a dataset's views and returns their cameras as the page's JSON.
pub fn dataset_cameras(
    data: &std::path::Path,
    background: [f64; 3],
) -> CliResult<Vec<serde_json::Value>> {
    let opts = splat::data::LoadOptions {
        background: background.map(|c| c as f32),
        ..Default::default()
    };
    // the cameras only: no photo is decoded, and a missing one takes its
    // camera's size (its split's in NeRF-synthetic)
    let ds = splat::data::load_cameras(data, &opts).map_err(CliError::data)?;
    Ok(state::cameras_json(&ds))
}

/// Binds, prints the URL and serves `state` on the current thread forever.
fn serve_forever(host: &str, port: u16, st: Arc<ViewState>, open: bool, json: bool) -> CliResult {
    let (listener, addr) = server::bind(host, port).map_err(|e| {
        // in use or not allowed: the port; anything else: the host
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse | std::io::ErrorKind::PermissionDenied => {
                "try another --port"
            }
            _ => "check --host",
        };
        CliError::usage(format!("cannot listen on {host}:{port}: {e} ({hint})"))
    })?;
    let url = format!("http://{addr}/");
    // on every interface (0.0.0.0, ::), the address is not one to open:
    // this machine's loopback one and its network one are
    let (here, lan) = match addr.ip().is_unspecified() {
        true => (
            format!(
                "http://{}/",
                SocketAddr::new(loopback_of(addr.ip()), addr.port())
            ),
            network_address(addr.ip())
                .or_else(|| dual_stack_v4(addr.ip()))
                .map(|ip| format!("http://{}/", SocketAddr::new(ip, addr.port()))),
        ),
        false => (url.clone(), None),
    };
    if json {
        let mut v = crate::output::with_warnings(serde_json::json!({ "url": url }));
        if let Some(lan) = &lan {
            v["lan_url"] = serde_json::json!(lan);
        }
        println!("{v}");
    } else {
        println!("viewer at {url} (Ctrl-C to stop)");
        if here != url {
            match &lan {
                Some(lan) => println!(
                    "  on every interface: open {here} on this machine, {lan} from another"
                ),
                None => println!("  on every interface: open {here} on this machine"),
            }
        }
    }
    if open {
        open_browser(&here);
    }
    server::serve(listener, state::handler(st));
    Ok(())
}

/// The IPv4 network address that a socket on `::` also answers on, where
/// it does (Linux's default dual-stack sockets: `bindv6only` 0), for a
/// network with no IPv6 route; `None` elsewhere.
fn dual_stack_v4(ip: IpAddr) -> Option<IpAddr> {
    let only = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").ok();
    answers_v4_too(ip, cfg!(target_os = "linux"), only.as_deref())
        .then(|| network_address(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)))
        .flatten()
}

/// Whether a socket bound to `ip` also answers IPv4: an IPv6 one on Linux
/// whose `bindv6only` setting (`sysctl`, its file's text) is 0.
fn answers_v4_too(ip: IpAddr, linux: bool, bindv6only: Option<&str>) -> bool {
    ip.is_ipv6() && linux && bindv6only.is_some_and(|t| t.trim() == "0")
}

/// The loopback address of `ip`'s family.
fn loopback_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    }
}

/// This machine's address on its network, in `ip`'s family: the one a
/// packet to a public address would leave from (a UDP socket's `connect`
/// only picks the route, it sends nothing); `None` without a network.
fn network_address(ip: IpAddr) -> Option<IpAddr> {
    let (bind, probe): (SocketAddr, SocketAddr) = match ip {
        // documentation addresses (RFC 5737, RFC 3849): never reached
        IpAddr::V4(_) => (([0, 0, 0, 0], 0).into(), ([192, 0, 2, 1], 9).into()),
        IpAddr::V6(_) => (
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            ("2001:db8::1".parse::<std::net::Ipv6Addr>().ok()?, 9).into(),
        ),
    };
    let s = std::net::UdpSocket::bind(bind).ok()?;
    s.connect(probe).ok()?;
    let local = s.local_addr().ok()?.ip();
    (!local.is_loopback() && !local.is_unspecified()).then_some(local)
}

/// Asks the desktop to open `url`; a failure is only a warning.
pub fn open_browser(url: &str) {
    let cmd = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(cmd).arg(url).spawn() {
        crate::output::warn(format!(
            "--open: cannot run {cmd}: {e}; open {url} yourself"
        ));
    }
}

/// Runs `chainrule view`.
pub fn run(a: ViewArgs) -> CliResult {
    // a train folder's (or its PLY's) settings.json: background, dataset,
    // antialiasing, up axis; flags override it
    // (a 2D fit's gaussians.json has none; an unbundled SOG's meta.json
    // is a 3D scene like any other)
    let (settings, model) = match a
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        && !splat::formats::sog::is_unbundled(&a.path)
    {
        true => (None, None),
        false => crate::settings::RenderSettings::find_with_model(&a.path)?,
    };
    let background = match (&a.background, &settings) {
        (Some(b), _) => crate::fit::parse_background(b)?,
        (None, Some(s)) => s.background,
        (None, None) => crate::scene_input::unsaved_background(&a.path, a.data.as_deref()),
    };
    let data = a.data.clone().or_else(|| {
        let d = settings.as_ref()?.dataset.clone()?;
        // (a folder, or nerfstudio's file named itself)
        if d.is_dir() || splat::data::nerfstudio::is_file(&d) {
            Some(d)
        } else {
            crate::output::warn(format!(
                "the training's dataset {} is not there; no cameras (use --data)",
                d.display()
            ));
            None
        }
    });
    // the site's model keeps the scene file's format unless told
    let mut scene_format = None;
    let st = match scene_input::open(&a.path)? {
        SceneInput::Scene3d { gaussians, file } => {
            scene_format = splat::formats::SceneFormat::from_path(&file);
            if gaussians.is_empty() {
                return Err(CliError::file(&a.path, "the scene has no Gaussians"));
            }
            let cameras = match &data {
                Some(d) => dataset_cameras(d, background)?,
                None => match &model {
                    Some(m) => state::views_json(m.cameras.iter().map(|v| (v, "train"))),
                    None => site_cameras(&a.path)?,
                },
            };
            let st = ViewState::scene(gaussians, cameras, background, false);
            let antialiased =
                scene_input::antialiased(settings.as_ref(), model.as_ref(), &a.path, &file);
            match &settings {
                Some(s) => st.with_training_settings(antialiased, s),
                None => st.with_antialiased(antialiased),
            }
        }
        SceneInput::Fit2d { file } => {
            if a.data.is_some() {
                return Err(CliError::usage("--data: a 2D fit has no cameras"));
            }
            if a.export.is_some() {
                return Err(CliError::usage(
                    "--export: a 2D fit's page renders the image on the server at each \
                     zoom, so it cannot be a static site; export a 3D scene, or share \
                     `chainrule render` PNGs",
                ));
            }
            ViewState::fit2d(&file)?
        }
    };
    match &a.export {
        Some(dir) => {
            // the site's own settings.json, so that `render` and `view` of
            // its model frame it as training did; the dataset stays home
            // with the drawing mode decided above: the settings made up
            // for an original 3DGS folder do not know it
            let site_settings = settings.map(|s| {
                crate::settings::RenderSettings {
                    background,
                    antialiased: st.antialiased(),
                    ..s
                }
                .without_dataset()
            });
            export_site(
                &st,
                dir,
                a.export_format
                    .or(scene_format.map(Into::into))
                    .unwrap_or(crate::export::ExportFormat::Ply)
                    .into(),
                site_settings.as_ref(),
                a.json,
            )
        }
        None => serve_forever(&a.host, a.port, Arc::new(st), a.open, a.json),
    }
}

/// The cameras of a site written by `--export` when `scene` is one (the
/// folder, or a model in it): its `cameras.json`, so a shared scene keeps
/// its viewpoints. Empty for any other scene; a `cameras.json` that cannot
/// be read is reported as a warning (the cameras are optional).
fn site_cameras(scene: &std::path::Path) -> CliResult<Vec<serde_json::Value>> {
    let dir = scene_input::scene_folder(scene);
    let file = dir.join("cameras.json");
    // a file beside someone else's info.json is not a site: no cameras
    if !matches!(scene_input::site_info(dir), Ok(Some(_))) || !file.is_file() {
        return Ok(Vec::new());
    }
    let cams = match std::fs::read_to_string(&file).map(|t| serde_json::from_str(&t)) {
        Ok(Ok(serde_json::Value::Array(cams))) => return Ok(cams),
        Ok(Ok(_)) => "not a JSON array of cameras".to_string(),
        Ok(Err(e)) => format!("not JSON: {e}"),
        Err(e) => format!("cannot read: {e}"),
    };
    crate::output::warn(format!("{}: {cams}; no cameras", file.display()));
    Ok(Vec::new())
}

/// Writes `st`'s page and scene as a static site into `dir` (each file
/// atomically), with `settings` as its `settings.json` when given, and
/// says how to look at it. A model that an earlier export into `dir`
/// left in another format is removed, and so are its settings when this
/// scene has none, so the folder holds one scene. A `train` output folder
/// is refused (its own settings.json would lose the dataset), and so is a
/// folder holding other files that no earlier export wrote.
fn export_site(
    st: &ViewState,
    dir: &std::path::Path,
    format: splat::formats::SceneFormat,
    settings: Option<&crate::settings::RenderSettings>,
    json: bool,
) -> CliResult {
    let model = dir.join(format!("model.{}", format.extension()));
    let mut files = st
        .static_site(format)
        .map_err(|e| CliError::file(&model, e))?
        .ok_or_else(|| CliError::usage("--export: only a 3D scene can be a static site"))?;
    if dir.exists() && !dir.is_dir() {
        return Err(CliError::file(
            dir,
            "--export: is a file, not a folder; name a new folder for the site",
        ));
    }
    if dir.join("point_cloud.ply").is_file() {
        return Err(CliError::file(
            dir,
            "--export: that folder is a `chainrule train` output; its settings.json and \
             files would be replaced. Export into a new folder",
        ));
    }
    if crate::original_3dgs::root_of(dir).is_some() {
        return Err(CliError::file(
            dir,
            "--export: that folder is a model folder of the original 3DGS; its cameras.json \
             would be replaced. Export into a new folder",
        ));
    }
    // a folder of something else (a dataset, a project): the site's files
    // would land among its own
    // (hidden files such as .git or .DS_Store do not count)
    let other = std::fs::read_dir(dir).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.file_name())
            .find(|n| !n.to_string_lossy().starts_with('.'))
    });
    if let Some(name) = other {
        if !matches!(scene_input::site_info(dir), Ok(Some(_))) {
            return Err(CliError::file(
                dir,
                format!(
                    "--export: that folder holds other files ({} among them) and no earlier \
                     site; export into a new or empty folder, or one an earlier --export wrote",
                    name.to_string_lossy()
                ),
            ));
        }
    }
    if let Some(s) = settings {
        // the site's model carries them too, where its format can (a
        // visitor who downloads the model alone keeps the framing)
        if format.is_ply() {
            let name = format!("model.{}", format.extension());
            if let Some((_, body)) = files.iter_mut().find(|(n, _)| *n == name) {
                let framed =
                    splat::formats::with_ply_comment(body.bytes().to_vec(), &s.ply_comment())
                        .map_err(|e| CliError::file(&model, e))?;
                *body = server::Body::Owned(framed);
            }
        }
        files.push((
            crate::settings::FILE.into(),
            server::Body::Owned(s.to_json().into_bytes()),
        ));
    }
    // what an earlier export into `dir` left that this one does not
    // replace: its model in another format, and its settings when this
    // scene has none (they would frame another scene)
    let mut stale = Vec::new();
    if let Some(earlier) = scene_input::site_info(dir).ok().flatten() {
        if earlier.model != model {
            stale.push(earlier.model);
        }
        let old_settings = dir.join(crate::settings::FILE);
        if settings.is_none() && old_settings.is_file() {
            stale.push(old_settings);
        }
    }
    let mut total = 0;
    for (rel, body) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            crate::output::ensure_dir(parent)?;
        }
        crate::output::write_atomic(&path, body.bytes())?;
        total += body.bytes().len();
    }
    for old in stale {
        std::fs::remove_file(&old).map_err(|e| {
            CliError::file(
                &old,
                format!("cannot remove the previous export's file: {e}"),
            )
        })?;
    }
    if json {
        println!(
            "{}",
            crate::output::with_warnings(serde_json::json!({
                "site": dir.display().to_string(),
                "model": model.display().to_string(),
                "files": files.len(),
                "bytes": total,
            }))
        );
        return Ok(());
    }
    println!(
        "wrote the viewer and the scene to {} ({} files, {:.1} MB); host the folder on any \
         web server (locally: python3 -m http.server -d {} 8000) and open its index.html",
        dir.display(),
        files.len(),
        total as f64 / 1e6,
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On `::`, an IPv4 network address is offered only for a dual-stack
    /// socket (Linux's `bindv6only` 0), and it is the one an IPv4 socket
    /// would offer; on `0.0.0.0` the IPv4 rule alone applies.
    /// Only an IPv6 socket on Linux with `bindv6only` 0 answers IPv4.
    #[test]
    fn only_a_dual_stack_socket_answers_ipv4() {
        let v4 = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        let v6 = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
        assert!(answers_v4_too(v6, true, Some("0\n")));
        assert!(!answers_v4_too(v6, true, Some("1\n")));
        assert!(!answers_v4_too(v6, true, None));
        assert!(!answers_v4_too(v6, false, Some("0")));
        assert!(!answers_v4_too(v4, true, Some("0")));
    }

    #[test]
    fn a_dual_stack_socket_offers_the_ipv4_network_address() {
        let v4 = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        let v6 = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
        assert_eq!(dual_stack_v4(v4), None);
        let dual = cfg!(target_os = "linux")
            && std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only")
                .is_ok_and(|s| s.trim() == "0");
        match dual {
            true => assert_eq!(dual_stack_v4(v6), network_address(v4)),
            false => assert_eq!(dual_stack_v4(v6), None),
        }
        assert!(dual_stack_v4(v6).is_none_or(|ip| ip.is_ipv4()));
    }
}
