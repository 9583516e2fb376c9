//! Where a capture's cameras look: the point nearest all their optical axes
//! (the focus), their mean up direction, and a smooth path through them.
//! `render --orbit` and `render --path` frame a scene with these; a COLMAP
//! capture has no fixed world axis to go by.

use super::{Mat4, View};

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalized(a: [f64; 3]) -> Option<[f64; 3]> {
    let n = dot(a, a).sqrt();
    (n > 1e-12 && n.is_finite()).then(|| a.map(|x| x / n))
}

/// A camera's optical axis (world direction of its +z) and its up direction
/// (world direction of its −y, OpenCV axes).
fn axes(v: &View) -> ([f64; 3], [f64; 3]) {
    let m = &v.world_to_camera;
    ([m[2][0], m[2][1], m[2][2]], [-m[1][0], -m[1][1], -m[1][2]])
}

/// The least-squares point nearest every camera's optical axis:
/// `argmin_p Σ |(I − d dᵀ)(p − c)|²` over centres `c` and unit axes `d`.
/// When the axes are (nearly) parallel there is no such point; then the
/// mean of the centres. `None` without views.
pub fn focus(views: &[View]) -> Option<[f64; 3]> {
    if views.is_empty() {
        return None;
    }
    let mut a = [[0.0f64; 3]; 3];
    let mut b = [0.0f64; 3];
    let mut mean = [0.0; 3];
    for v in views {
        let (d, _) = axes(v);
        let c = v.camera_center();
        for i in 0..3 {
            mean[i] += c[i] / views.len() as f64;
            for j in 0..3 {
                let p = if i == j { 1.0 } else { 0.0 } - d[i] * d[j];
                a[i][j] += p;
                b[i] += p * c[j];
            }
        }
    }
    Some(solve3(a, b).unwrap_or(mean))
}

/// [`focus`], unless it is not where the scene is: behind the cameras, or
/// farther from their mean than 95% of the sparse `points` (the
/// least-squares point of nearly parallel axes, as a forward-facing
/// capture's, can lie thousands of units away); then the points' median
/// (per axis). Without points, [`focus`].
pub fn focus_within(views: &[View], points: Option<&[[f64; 3]]>) -> Option<[f64; 3]> {
    let f = focus(views)?;
    let Some(points) = points.filter(|p| !p.is_empty()) else {
        return Some(f);
    };
    let n = views.len() as f64;
    let mut mean = [0.0; 3];
    for v in views {
        let c = v.camera_center();
        for i in 0..3 {
            mean[i] += c[i] / n;
        }
    }
    let dist = |p: &[f64; 3]| (0..3).map(|i| (p[i] - mean[i]).powi(2)).sum::<f64>().sqrt();
    let mut far: Vec<f64> = points.iter().map(dist).collect();
    far.sort_by(f64::total_cmp);
    let far = far[(far.len() - 1) * 95 / 100];
    // in front of the cameras: the median camera's depth of the focus
    // (a mean axis would vanish for a ring of cameras), beyond rounding
    let mut depths: Vec<f64> = views
        .iter()
        .map(|v| {
            let (d, _) = axes(v);
            let c = v.camera_center();
            (0..3).map(|i| (f[i] - c[i]) * d[i]).sum()
        })
        .collect();
    depths.sort_by(f64::total_cmp);
    let depth = depths[depths.len() / 2];
    if depth > 1e-9 * far.max(f64::MIN_POSITIVE) && dist(&f) <= far {
        return Some(f);
    }
    let median = |k: usize| {
        let mut c: Vec<f64> = points.iter().map(|p| p[k]).collect();
        c.sort_by(f64::total_cmp);
        c[c.len() / 2]
    };
    Some([median(0), median(1), median(2)])
}

/// Solves a 3×3 system by Cramer's rule; `None` when it is (nearly)
/// singular relative to its size.
fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    let scale = a
        .iter()
        .flatten()
        .map(|x| x.abs())
        .fold(0.0, f64::max)
        .powi(3);
    if d.abs() <= 1e-6 * scale || !d.is_finite() {
        return None;
    }
    let mut x = [0.0; 3];
    for (k, xk) in x.iter_mut().enumerate() {
        let mut m = a;
        for i in 0..3 {
            m[i][k] = b[i];
        }
        *xk = det(m) / d;
    }
    Some(x)
}

/// The cameras' mean up direction (unit), `None` if they cancel out.
pub fn mean_up(views: &[View]) -> Option<[f64; 3]> {
    let mut s = [0.0; 3];
    for v in views {
        let (_, up) = axes(v);
        for k in 0..3 {
            s[k] += up[k];
        }
    }
    normalized(s)
}

/// The median distance of the cameras from `p`.
pub fn median_distance(views: &[View], p: [f64; 3]) -> f64 {
    let mut d: Vec<f64> = views
        .iter()
        .map(|v| {
            let c = v.camera_center();
            dot(
                [c[0] - p[0], c[1] - p[1], c[2] - p[2]],
                [c[0] - p[0], c[1] - p[1], c[2] - p[2]],
            )
            .sqrt()
        })
        .collect();
    if d.is_empty() {
        return 0.0;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

/// The mean elevation (radians) of the cameras above the plane through `p`
/// orthogonal to `up`, seen from `p`.
pub fn mean_elevation(views: &[View], p: [f64; 3], up: [f64; 3]) -> f64 {
    let mut s = 0.0;
    for v in views {
        let c = v.camera_center();
        let Some(d) = normalized([c[0] - p[0], c[1] - p[1], c[2] - p[2]]) else {
            continue;
        };
        s += dot(d, up).clamp(-1.0, 1.0).asin();
    }
    s / views.len().max(1) as f64
}

/// The unit direction, in the plane through `p` orthogonal to `up`, from
/// `p` toward the cameras' mean position, when they stand to one side of
/// `p` (a forward-facing capture: their mean lies at least a quarter of
/// their median distance from `p` in that plane); `None` when they
/// surround it (or there are none).
pub fn facing(views: &[View], p: [f64; 3], up: [f64; 3]) -> Option<[f64; 3]> {
    if views.is_empty() {
        return None;
    }
    let mut m = [0.0; 3];
    for v in views {
        let c = v.camera_center();
        for k in 0..3 {
            m[k] += (c[k] - p[k]) / views.len() as f64;
        }
    }
    let along = dot(m, up);
    let flat = [0, 1, 2].map(|k| m[k] - along * up[k]);
    (dot(flat, flat).sqrt() >= 0.25 * median_distance(views, p))
        .then(|| normalized(flat))
        .flatten()
}

/// Spherical linear interpolation of unit quaternions (the shorter way).
fn slerp(a: [f64; 4], mut b: [f64; 4], t: f64) -> [f64; 4] {
    let mut c: f64 = (0..4).map(|k| a[k] * b[k]).sum();
    if c < 0.0 {
        b = b.map(|x| -x);
        c = -c;
    }
    let (wa, wb) = if c > 0.9995 {
        (1.0 - t, t)
    } else {
        let th = c.min(1.0).acos();
        let s = th.sin();
        (((1.0 - t) * th).sin() / s, (t * th).sin() / s)
    };
    let q: [f64; 4] = [0, 1, 2, 3].map(|k| wa * a[k] + wb * b[k]);
    let n = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    q.map(|x| x / n)
}

/// A camera part way along the path through `views` (in their order): `s`
/// from 0 (the first) to `views.len() − 1` (the last); positions are
/// interpolated linearly, rotations by slerp, intrinsics linearly. Every
/// camera of a path has one size, so that its frames make one video: the
/// size most of the views have (of sizes as common, the first view's in
/// path order). Each view's intrinsics are first fitted to that size (its
/// focal lengths and `cx` scaled by the ratio of the widths, which keeps
/// its horizontal field of view and its pixels square, and `cy` kept as
/// the same fraction of the height). The result is a camera only, named
/// after the view it leaves (`⌊s⌋`, the last but one at the end).
///
/// # Panics
/// When `views` is empty.
pub fn along_path(views: &[View], s: f64) -> View {
    let last = views.len() - 1;
    let s = s.clamp(0.0, last as f64);
    let i = (s.floor() as usize).min(last.saturating_sub(1));
    let t = if last == 0 { 0.0 } else { s - i as f64 };
    let (a, b) = (&views[i], &views[(i + 1).min(last)]);
    let rot = |v: &View| {
        let m = v.world_to_camera;
        [
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ]
    };
    let q = slerp(
        super::colmap::rotation_to_quat(rot(a)),
        super::colmap::rotation_to_quat(rot(b)),
        t,
    );
    let r = super::colmap::quat_to_rotation(q).expect("a unit quaternion");
    let (ca, cb) = (a.camera_center(), b.camera_center());
    let c: [f64; 3] = [0, 1, 2].map(|k| ca[k] + t * (cb[k] - ca[k]));
    let mut m: Mat4 = [[0.0; 4]; 4];
    for row in 0..3 {
        m[row][..3].copy_from_slice(&r[row]);
        m[row][3] = -dot(r[row], c);
    }
    m[3][3] = 1.0;
    let (w0, h0) = path_size(views);
    // (a view of that size keeps its values exactly)
    let fitted = |v: &View| {
        let k = w0 as f64 / v.width as f64;
        [
            v.fx * k,
            v.fy * k,
            v.cx * k,
            v.cy * (h0 as f64 / v.height as f64),
        ]
    };
    let (ka, kb) = (fitted(a), fitted(b));
    let k: [f64; 4] = [0, 1, 2, 3].map(|j| ka[j] + t * (kb[j] - ka[j]));
    View::camera_only(a.name.clone(), (w0, h0), k, m)
}

/// The size of the cameras along a path through `views` (see
/// [`along_path`]): the most common, the first of equals in `views`'
/// order.
fn path_size(views: &[View]) -> (u32, u32) {
    let mut counts: Vec<((u32, u32), usize)> = Vec::new();
    for v in views {
        let size = (v.width, v.height);
        match counts.iter_mut().find(|(s, _)| *s == size) {
            Some((_, n)) => *n += 1,
            None => counts.push((size, 1)),
        }
    }
    // (max_by_key keeps the last of equals: the first, reversed)
    counts
        .iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map(|(s, _)| *s)
        .expect("a path through at least one view")
}

/// The photos `render --path` flies through, in order: all of them by
/// [`path_order`], except for a rig (the photos in several folders, such
/// as `cam0/` and `cam1/`, that share their file names: one frame taken by
/// several cameras at once, so from about one place), where one camera's photos are flown, those
/// of the folder with the most (the first by name of equals), since
/// flying them all would sweep through one camera's sequence and jump
/// back to the next's. Returns the views and, for a rig, that folder and
/// the number of folders.
///
/// ```
/// use splat::data::{capture::path_through, View};
/// let at = |name: &str| View::camera_only(name.into(), (4, 3), [4.0, 4.0, 2.0, 1.5],
///     [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]);
/// let rig = ["cam1/f2.png", "cam0/f1.png", "cam1/f1.png", "cam0/f2.png"].map(at).to_vec();
/// let (views, chosen) = path_through(rig);
/// assert_eq!(views.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["cam0/f1.png", "cam0/f2.png"]);
/// assert_eq!(chosen, Some(("cam0".to_string(), 2)));
/// ```
pub fn path_through(mut views: Vec<View>) -> (Vec<View>, Option<(String, usize)>) {
    use std::collections::{HashMap, HashSet};
    views.sort_by(|a, b| path_order(&a.name, &b.name));
    let split = |name: &str| -> (String, String) {
        let (folder, file) = name.rsplit_once('/').unwrap_or(("", name));
        (folder.to_string(), file.to_string())
    };
    // the folders in path order, each with its photos' file names, and
    // each photo's camera centre by (folder, file name)
    let mut folders: Vec<(String, HashSet<String>)> = Vec::new();
    let mut centre: HashMap<(String, String), [f64; 3]> = HashMap::new();
    for v in &views {
        let (folder, file) = split(&v.name);
        match folders.iter_mut().find(|(f, _)| *f == folder) {
            Some((_, files)) => {
                files.insert(file.clone());
            }
            None => folders.push((folder.clone(), [file.clone()].into())),
        }
        centre.insert((folder, file), v.camera_center());
    }
    if folders.len() < 2 {
        return (views, None);
    }
    let (largest, _) = folders
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, (_, files))| files.len())
        .expect("two folders or more");
    // a rig when another folder holds most of the same file names, taken
    // from about the same places: the photos of one name stand closer
    // together than 0.4 of the cameras' median distance from their mean
    // (a trial's two-camera rig: 0.11; a NeRF-synthetic dataset's
    // `train/r_0` and `test/r_0`, or two days' `IMG_0001`, share names
    // from anywhere: about 1.4 on a sphere of cameras)
    let (largest_name, files) = &folders[largest];
    let at = |folder: &str, file: &str| centre[&(folder.to_string(), file.to_string())];
    let n = centre.len() as f64;
    let mean = [0, 1, 2].map(|k| centre.values().map(|c| c[k]).sum::<f64>() / n);
    let dist = |a: [f64; 3], b: [f64; 3]| {
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
    };
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied()
    };
    let spread = median(centre.values().map(|&c| dist(c, mean)).collect()).unwrap_or(0.0);
    let is_rig = folders.iter().enumerate().any(|(i, (folder, other))| {
        let both: Vec<&String> = other.intersection(files).collect();
        if i == largest || 2 * both.len() < other.len().min(files.len()).max(1) {
            return false;
        }
        let apart = both
            .iter()
            .map(|f| dist(at(folder, f), at(largest_name, f)))
            .collect();
        median(apart).is_some_and(|d| d <= 0.4 * spread)
    });
    if !is_rig {
        return (views, None);
    }
    let folder = largest_name.clone();
    let count = folders.len();
    views.retain(|v| split(&v.name).0 == folder);
    (views, Some((folder, count)))
}

/// The order `render --path` flies through a capture's photos: by name,
/// with runs of digits compared as numbers (`IMG_2` before `IMG_10`, as
/// a file browser lists them), ties broken by the plain order (so `01`
/// and `1` keep a fixed order).
///
/// ```
/// use splat::data::capture::path_order;
/// let mut names = ["f10.png", "f9.png", "f1.png", "e.png", "f09.png"];
/// names.sort_by(|a, b| path_order(a, b));
/// assert_eq!(names, ["e.png", "f1.png", "f09.png", "f9.png", "f10.png"]);
/// ```
pub fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    // the leading run of digits (or other bytes) of a name
    let run = |s: &[u8], digits: bool| {
        s.iter()
            .take_while(|c| c.is_ascii_digit() == digits)
            .count()
    };
    while let (Some(&c), Some(&d)) = (x.first(), y.first()) {
        let digits = c.is_ascii_digit();
        if digits != d.is_ascii_digit() {
            return c.cmp(&d);
        }
        let (m, n) = (run(x, digits), run(y, digits));
        let (p, q) = (&x[..m], &y[..n]);
        let o = if digits {
            // as numbers: without leading zeros, the longer is larger
            let strip = |r: &[u8]| {
                let z = r.iter().take_while(|&&c| c == b'0').count();
                r[z..].to_vec()
            };
            let (p, q) = (strip(p), strip(q));
            p.len().cmp(&q.len()).then_with(|| p.cmp(&q))
        } else {
            p.cmp(q)
        };
        if o != Ordering::Equal {
            return o;
        }
        (x, y) = (&x[m..], &y[n..]);
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `path_order` is a total order (equal only for equal names,
        /// antisymmetric, transitive) and, on names whose numbers have the
        /// same width (zero-padded frames), the plain order.
        #[test]
        fn path_order_is_a_total_order(
            a in "[a0-9_]{0,6}", b in "[a0-9_]{0,6}", c in "[a0-9_]{0,6}",
            i in 0u32..1000, j in 0u32..1000,
        ) {
            use std::cmp::Ordering::*;
            let o = |x: &str, y: &str| path_order(x, y);
            proptest::prop_assert_eq!(o(&a, &b) == Equal, a == b);
            proptest::prop_assert_eq!(o(&a, &b), o(&b, &a).reverse());
            let mut v = [a.clone(), b.clone(), c.clone()];
            v.sort_by(|x, y| o(x, y));
            proptest::prop_assert!(o(&v[0], &v[2]) != Greater);
            let (p, q) = (format!("f{i:04}.png"), format!("f{j:04}.png"));
            proptest::prop_assert_eq!(o(&p, &q), p.cmp(&q));
            let (p, q) = (format!("f{i}.png"), format!("f{j}.png"));
            proptest::prop_assert_eq!(o(&p, &q), i.cmp(&j));
        }
    }

    /// `path_through` flies one camera of a rig (folders sharing file
    /// names), and every photo otherwise: one folder, folders of other
    /// names (a capture split by day), or photos loose beside a folder.
    #[test]
    fn a_path_flies_one_camera_of_a_rig_and_every_photo_otherwise() {
        // photos on a circle of radius 3 by the number in their file
        // name; a folder moves them up to 3 cm (a rig) or, for names
        // starting with `far`, turns them by its name's byte sum in
        // radians (photos of one name from elsewhere)
        let at = |name: &str| {
            let (folder, file) = name.rsplit_once('/').unwrap_or(("", name));
            let k: f64 = file
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0.0);
            let shift = folder.bytes().map(f64::from).sum::<f64>();
            let a = 0.3 * k
                + if folder.starts_with("far") {
                    shift
                } else {
                    0.0
                };
            let d = 0.01 * (shift % 3.0);
            [3.0 * a.cos() + d, 3.0 * a.sin(), 1.0]
        };
        let views_at = |list: &[&str]| -> Vec<View> {
            list.iter()
                .map(|n| {
                    let mut v = looking(at(n), [0.0; 3]);
                    v.name = n.to_string();
                    v
                })
                .collect()
        };
        let names = |list: &[&str]| {
            let (views, rig) = path_through(views_at(list));
            (views.into_iter().map(|v| v.name).collect::<Vec<_>>(), rig)
        };
        // a rig of three cameras, one of which missed a frame
        let (flown, rig) = names(&[
            "cam2/f1.jpg",
            "cam1/f2.jpg",
            "cam0/f10.jpg",
            "cam0/f2.jpg",
            "cam1/f1.jpg",
            "cam2/f2.jpg",
            "cam0/f1.jpg",
            "cam1/f10.jpg",
            "cam2/f10.jpg",
            "cam1/f3.jpg",
        ]);
        assert_eq!(
            flown,
            ["cam1/f1.jpg", "cam1/f2.jpg", "cam1/f3.jpg", "cam1/f10.jpg"]
        );
        assert_eq!(rig, Some(("cam1".to_string(), 3)));
        // equal sizes: the first folder by name
        let (flown, rig) = names(&["b/x1.png", "a/x1.png", "b/x2.png", "a/x2.png"]);
        assert_eq!(flown, ["a/x1.png", "a/x2.png"]);
        assert_eq!(rig, Some(("a".to_string(), 2)));
        // nested folders are folders like any other
        let (flown, _) = names(&["s/l/1.png", "s/r/1.png", "s/l/2.png", "s/r/2.png"]);
        assert_eq!(flown, ["s/l/1.png", "s/l/2.png"]);
        for plain in [
            &["IMG_2.jpg", "IMG_10.jpg", "IMG_1.jpg"][..],
            &[
                "day2/IMG_3.jpg",
                "day1/IMG_1.jpg",
                "day1/IMG_2.jpg",
                "day2/IMG_4.jpg",
            ][..],
            &["x/IMG_1.jpg", "x/IMG_2.jpg", "IMG_3.jpg"][..],
            // a NeRF-synthetic dataset's splits: the same names, elsewhere
            &[
                "far_train/r_0.png",
                "far_train/r_1.png",
                "far_train/r_2.png",
                "far_test/r_0.png",
                "far_test/r_1.png",
                "far_test/r_2.png",
            ][..],
        ] {
            let (flown, rig) = names(plain);
            assert_eq!(rig, None, "{plain:?}");
            let mut sorted = plain.to_vec();
            sorted.sort_by(|a, b| path_order(a, b));
            assert_eq!(flown, sorted);
        }
    }

    /// A view at `eye` looking at `target` with world up +z.
    fn looking(eye: [f64; 3], target: [f64; 3]) -> View {
        let f = normalized([target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]]).unwrap();
        let up = [0.0, 0.0, 1.0];
        let r = normalized([
            f[1] * up[2] - f[2] * up[1],
            f[2] * up[0] - f[0] * up[2],
            f[0] * up[1] - f[1] * up[0],
        ])
        .unwrap();
        let d = [
            f[1] * r[2] - f[2] * r[1],
            f[2] * r[0] - f[0] * r[2],
            f[0] * r[1] - f[1] * r[0],
        ];
        let mut m = [[0.0; 4]; 4];
        for (row, axis) in [r, d, f].into_iter().enumerate() {
            m[row][..3].copy_from_slice(&axis);
            m[row][3] = -dot(axis, eye);
        }
        m[3][3] = 1.0;
        View {
            name: "v".into(),
            width: 4,
            height: 4,
            fx: 4.0,
            fy: 4.0,
            cx: 2.0,
            cy: 2.0,
            world_to_camera: m,
            image: crate::data::Pixels8::from_bytes(vec![0; 48]),
            alpha: None,
            background: [0.0; 3],
            mask: None,
        }
    }

    #[test]
    fn a_forward_facing_capture_centres_on_its_points() {
        // cameras side by side looking nearly the same way (+y), their
        // axes meeting far behind the scene; the scene's points at y 4-6
        let views: Vec<View> = (0..5)
            .map(|i| looking([i as f64 * 0.1 - 0.2, 0.0, 1.0], [0.0, 30.0, 1.0]))
            .collect();
        let far = focus(&views).unwrap();
        assert!((far[1] - 30.0).abs() < 1e-6, "{far:?}");
        // axes exactly parallel: no point, the cameras' mean, behind none
        // of the scene's points either
        let parallel: Vec<View> = (0..5)
            .map(|i| {
                let x = i as f64 * 0.1 - 0.2;
                looking([x, 0.0, 1.0], [x, 300.0, 1.0])
            })
            .collect();
        let points: Vec<[f64; 3]> = (0..21)
            .map(|i| [0.05 * (i % 5) as f64, 4.0 + 0.1 * i as f64, 1.0])
            .collect();
        let c = focus_within(&views, Some(&points)).unwrap();
        assert_eq!(c, [0.1, 5.0, 1.0]);
        assert_eq!(focus_within(&parallel, Some(&points)), Some(c));
        // where the axes do meet among the points, that point stays
        let around: Vec<View> = (0..6)
            .map(|i| {
                let a = i as f64;
                looking([3.0 * a.cos(), 3.0 * a.sin(), 1.0], [0.0, 0.0, 1.0])
            })
            .collect();
        let ring: Vec<[f64; 3]> = (0..12)
            .map(|i| [(i as f64).cos(), (i as f64).sin(), 1.0])
            .collect();
        let f = focus_within(&around, Some(&ring)).unwrap();
        // a full level ring of 36, whose axes sum to nothing: still in
        // front of every camera
        let ring36: Vec<View> = (0..36)
            .map(|i| {
                let a = i as f64 * std::f64::consts::TAU / 36.0;
                looking([3.0 * a.cos(), 3.0 * a.sin(), 1.0], [0.0, 0.0, 1.0])
            })
            .collect();
        let f36 = focus_within(&ring36, Some(&ring)).unwrap();
        assert!(
            f36.iter()
                .zip([0.0, 0.0, 1.0])
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{f36:?}"
        );
        assert!(
            f.iter()
                .zip([0.0, 0.0, 1.0])
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{f:?}"
        );
        assert_eq!(focus_within(&views, None), Some(far));
    }

    #[test]
    fn cameras_to_one_side_face_the_orbit_and_cameras_around_do_not() {
        let up = [0.0, 0.0, 1.0];
        // five cameras at y = 0 looking at a scene about y = 5, from a bit
        // above: the direction toward them, in the ground plane, is -y
        let front: Vec<View> = (0..5)
            .map(|i| looking([i as f64 * 0.2 - 0.4, 0.0, 1.5], [0.0, 5.0, 1.0]))
            .collect();
        let f = facing(&front, [0.0, 5.0, 1.0], up).unwrap();
        assert!(
            (f[0]).abs() < 1e-9 && (f[1] + 1.0).abs() < 1e-9 && f[2] == 0.0,
            "{f:?}"
        );
        // eight cameras on a circle about the same point: none
        let around: Vec<View> = (0..8)
            .map(|i| {
                let a = std::f64::consts::TAU * i as f64 / 8.0;
                looking([5.0 * a.cos(), 5.0 + 5.0 * a.sin(), 1.5], [0.0, 5.0, 1.0])
            })
            .collect();
        assert_eq!(facing(&around, [0.0, 5.0, 1.0], up), None);
        assert_eq!(facing(&[], [0.0; 3], up), None);
    }

    #[test]
    fn cameras_looking_at_a_point_have_it_as_focus_and_up_their_up() {
        let target = [0.3, -1.2, 0.7];
        let views: Vec<View> = (0..7)
            .map(|i| {
                let a = i as f64;
                looking(
                    [3.0 * a.cos(), 3.0 * a.sin() - 1.0, 1.5 + 0.2 * a.sin()],
                    target,
                )
            })
            .collect();
        let f = focus(&views).unwrap();
        for k in 0..3 {
            assert!((f[k] - target[k]).abs() < 1e-9, "{f:?}");
        }
        let up = mean_up(&views).unwrap();
        // the cameras look slightly down, so their mean up leans but is
        // mostly +z
        assert!(up[2] > 0.9, "{up:?}");
        // parallel axes: no focus point, the mean centre instead
        let par = [
            looking([0.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
            looking([1.0, 0.0, 0.0], [1.0, 1.0, 0.0]),
        ];
        assert_eq!(focus(&par).unwrap(), [0.5, 0.0, 0.0]);
    }

    #[test]
    fn the_path_passes_through_the_cameras_and_turns_smoothly() {
        let views = [
            looking([2.0, 0.0, 0.0], [0.0; 3]),
            looking([0.0, 2.0, 0.0], [0.0; 3]),
        ];
        let start = along_path(&views, 0.0);
        let end = along_path(&views, 1.0);
        for r in 0..3 {
            for c in 0..4 {
                assert!(
                    (start.world_to_camera[r][c] - views[0].world_to_camera[r][c]).abs() < 1e-9
                );
                assert!((end.world_to_camera[r][c] - views[1].world_to_camera[r][c]).abs() < 1e-9);
            }
        }
        // half way: between the two positions, looking half way between
        // the two directions (45°), so along −(1, 1, 0)/√2
        let mid = along_path(&views, 0.5);
        let c = mid.camera_center();
        assert!((c[0] - 1.0).abs() < 1e-9 && (c[1] - 1.0).abs() < 1e-9);
        let fwd = mid.world_to_camera[2];
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (fwd[0] + h).abs() < 1e-9 && (fwd[1] + h).abs() < 1e-9,
            "{fwd:?}"
        );
    }

    /// Cameras of other sizes (COLMAP's camera per photo, undistorted to
    /// sizes a few pixels apart, or a second camera of another resolution)
    /// are fitted to one size, the most common (the first view's of
    /// equals): every frame has it, and a camera twice the size with twice
    /// the focal length frames the same view.
    #[test]
    fn every_camera_of_a_path_has_one_size() {
        let mut views = [
            looking([2.0, 0.0, 0.0], [0.0; 3]),
            looking([0.0, 2.0, 0.0], [0.0; 3]),
            looking([-2.0, 0.0, 0.0], [0.0; 3]),
        ];
        views[0] = View::camera_only(
            "a".into(),
            (320, 240),
            [300.0, 300.0, 160.0, 120.0],
            views[0].world_to_camera,
        );
        // twice the size, the same field of view, the principal point off
        // centre by 10% of the height
        views[1] = View::camera_only(
            "b".into(),
            (640, 480),
            [600.0, 600.0, 320.0, 288.0],
            views[1].world_to_camera,
        );
        // a few pixels narrower, as an undistorted photo may be
        views[2] = View::camera_only(
            "c".into(),
            (316, 236),
            [296.0, 296.0, 158.0, 118.0],
            views[2].world_to_camera,
        );
        for s in [0.0, 0.25, 0.5, 1.0, 1.5, 2.0] {
            let v = along_path(&views, s);
            assert_eq!((v.width, v.height), (320, 240), "at {s}");
            assert!(v.image.is_empty());
        }
        let b = along_path(&views, 1.0);
        assert_eq!([b.fx, b.fy, b.cx, b.cy], [300.0, 300.0, 160.0, 144.0]);
        let mid = along_path(&views, 0.5);
        assert_eq!([mid.fx, mid.cy], [300.0, 132.0]);
        assert_eq!(along_path(&views, 0.0).fx, 300.0);
        let c = along_path(&views, 2.0);
        let k = 320.0 / 316.0;
        assert_eq!([c.fx, c.cx], [296.0 * k, 158.0 * k]);
        assert_eq!(c.cy, 118.0 * (240.0 / 236.0));
        // an odd first photo does not decide: most views are 640×480
        let mut more = views.to_vec();
        more.push(View::camera_only(
            "d".into(),
            (640, 480),
            [500.0, 500.0, 320.0, 240.0],
            views[0].world_to_camera,
        ));
        let first = along_path(&more, 0.0);
        assert_eq!((first.width, first.height), (640, 480));
        assert_eq!([first.fx, first.cy], [600.0, 240.0]);
    }
}
