// The page of `chainrule view`: Gaussians drawn by Spark (vendored, see
// vendor/VERSIONS) on three.js, with our own camera model so a dataset
// camera's intrinsics are used exactly.
//
// Cameras follow the renderer's conventions: world-to-camera rotation R
// (rows are the camera's x right, y down, z forward axes in world
// coordinates, OpenCV style) and translation t, pixel centres at +0.5,
// intrinsics fx, fy, cx, cy in pixels of a w x h image.
//
// URL parameters: ?camera=NAME opens at a dataset camera (NAME: the photo's
// name, file name or stem; an unknown name is said and the start view
// shown) with the canvas of the photo's size in pixels, scaled to fit the
// window and centred; ?pose=X,Y,Z,QW,QX,QY,QZ&fov=DEG opens at a free viewpoint (the
// camera's centre in world coordinates and the unit quaternion of its
// world-to-camera rotation, and the field of view across the window's
// shorter side: top to bottom on a landscape window);
// ?camera=NAME&pose=... opens at that pose through that dataset camera's
// lens (its size and intrinsics: a view moved away from the camera); ui=0
// hides every overlay. The address bar follows the view (a dataset
// camera's name while looking through it, the pose too once moved, else
// the pose and field of view), so a copied link opens where it was copied
// and framed as it was.
import * as THREE from "three";
import { SparkRenderer, SplatMesh } from "@sparkjsdev/spark";

const params = new URLSearchParams(location.search);
const showUi = params.get("ui") !== "0";
const wantCamera = params.get("camera");
const wantPose = params.get("pose");
// read by the browser tests: ready once the model is drawn, sorted
const state = (window.__viewer = { ready: false, error: null, notice: null, frames: 0, version: -1, splats: 0, frameMs: [] });
if (!showUi) document.body.classList.add("noui");
const $ = (id) => document.getElementById(id);

function fail(e) {
  state.error = String(e && e.stack ? e.stack : e);
  const box = $("error");
  box.hidden = false;
  box.textContent = "error: " + e;
  console.error(e);
}

// a problem that leaves the page usable: shown in the error box (the
// browser tests read it as state.notice), not fatal
function notice(text) {
  state.notice = text;
  const box = $("error");
  box.hidden = false;
  box.textContent = text;
  console.warn(text);
}

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    // (the file named, as the command line names it)
    throw new Error(`${url}: not JSON: ${e.message}`);
  }
}

// ---- small vector helpers (arrays of 3) ----
const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const mul = (a, s) => [a[0] * s, a[1] * s, a[2] * s];
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a) => Math.hypot(a[0], a[1], a[2]);
const unit = (a) => mul(a, 1 / (norm(a) || 1));
// rotation matrix (rows) about a unit axis
function axisAngle(k, ang) {
  const c = Math.cos(ang), s = Math.sin(ang), v = 1 - c;
  return [
    [c + k[0] * k[0] * v, k[0] * k[1] * v - k[2] * s, k[0] * k[2] * v + k[1] * s],
    [k[1] * k[0] * v + k[2] * s, c + k[1] * k[1] * v, k[1] * k[2] * v - k[0] * s],
    [k[2] * k[0] * v - k[1] * s, k[2] * k[1] * v + k[0] * s, c + k[2] * k[2] * v],
  ];
}
const mv = (m, v) => [dot(m[0], v), dot(m[1], v), dot(m[2], v)];
// R' = R Q^T: each row (a camera axis in world) rotated by Q
const rotateAxes = (R, Q) => R.map((row) => mv(Q, row));
const centerOf = (cam) => mul(mv(transpose(cam.R), cam.t), -1);
function transpose(m) {
  return [0, 1, 2].map((i) => [m[0][i], m[1][i], m[2][i]]);
}
// a rotation matrix (rows) as a unit quaternion [w, x, y, z], w >= 0
function toQuaternion(R) {
  const t = R[0][0] + R[1][1] + R[2][2];
  let q;
  if (t > 0) {
    const s = 2 * Math.sqrt(1 + t);
    q = [s / 4, (R[2][1] - R[1][2]) / s, (R[0][2] - R[2][0]) / s, (R[1][0] - R[0][1]) / s];
  } else if (R[0][0] > R[1][1] && R[0][0] > R[2][2]) {
    const s = 2 * Math.sqrt(1 + R[0][0] - R[1][1] - R[2][2]);
    q = [(R[2][1] - R[1][2]) / s, s / 4, (R[0][1] + R[1][0]) / s, (R[0][2] + R[2][0]) / s];
  } else if (R[1][1] > R[2][2]) {
    const s = 2 * Math.sqrt(1 + R[1][1] - R[0][0] - R[2][2]);
    q = [(R[0][2] - R[2][0]) / s, (R[0][1] + R[1][0]) / s, s / 4, (R[1][2] + R[2][1]) / s];
  } else {
    const s = 2 * Math.sqrt(1 + R[2][2] - R[0][0] - R[1][1]);
    q = [(R[1][0] - R[0][1]) / s, (R[0][2] + R[2][0]) / s, (R[1][2] + R[2][1]) / s, s / 4];
  }
  const n = Math.hypot(...q) * (q[0] < 0 ? -1 : 1);
  return q.map((x) => x / n);
}
function fromQuaternion([w, x, y, z]) {
  return [
    [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
    [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
    [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
  ];
}
// `pose` and `fov` parameters: { R, C, fov } or null (and why) when malformed
function parsePose(text, fovText) {
  const v = text.split(",").map(Number);
  if (v.length !== 7 || !v.every(Number.isFinite)) return { error: "expected 7 numbers X,Y,Z,QW,QX,QY,QZ" };
  const q = v.slice(3);
  const n = Math.hypot(...q);
  if (!(n > 1e-6)) return { error: "the quaternion is zero" };
  const fov = fovText === null ? null : Number(fovText);
  if (fov !== null && !(fov > 0 && fov < 180)) return { error: "fov must be between 0 and 180 degrees" };
  return { C: v.slice(0, 3), R: fromQuaternion(q.map((x) => x / n)), fov };
}
function withCenter(cam, C) {
  cam.t = mul(mv(cam.R, C), -1);
}

// The projection matrix of pinhole intrinsics (OpenGL clip space, camera
// looking down -z): pixel u = fx x/z + cx maps to NDC 2u/w - 1.
function projection(cam, near, far) {
  const { fx, fy, cx, cy, w, h } = cam;
  const m = new THREE.Matrix4();
  m.set(
    (2 * fx) / w, 0, 1 - (2 * cx) / w, 0,
    0, (2 * fy) / h, (2 * cy) / h - 1, 0,
    0, 0, -(far + near) / (far - near), (-2 * far * near) / (far - near),
    0, 0, -1, 0,
  );
  return m;
}

// world-to-camera (OpenCV) -> three's camera matrices (OpenGL axes: y up, z back)
function applyCamera(camera, cam, near, far) {
  const R = cam.R, t = cam.t;
  const v = new THREE.Matrix4();
  v.set(
    R[0][0], R[0][1], R[0][2], t[0],
    -R[1][0], -R[1][1], -R[1][2], -t[1],
    -R[2][0], -R[2][1], -R[2][2], -t[2],
    0, 0, 0, 1,
  );
  const inv = v.clone().invert();
  camera.matrix.copy(inv);
  camera.matrix.decompose(camera.position, camera.quaternion, camera.scale);
  camera.matrixWorld.copy(inv);
  camera.matrixWorldInverse.copy(v);
  camera.projectionMatrix.copy(projection(cam, near, far));
  camera.projectionMatrixInverse.copy(camera.projectionMatrix).invert();
}

// A dataset camera by NAME: its full name (with or without the extension
// or a leading ./), else its file name or stem; a short name that several
// splits share (NeRF-synthetic's r_0) means the test view, as
// `chainrule render --data` renders the test split by default.
function findCamera(cameras, name) {
  const strip = (s) => s.replace(/^\.\//, "");
  const noext = (s) => (s.lastIndexOf(".") > s.lastIndexOf("/") ? s.slice(0, s.lastIndexOf(".")) : s);
  const n = strip(name);
  const full = cameras.find((c) => strip(c.name) === n || noext(strip(c.name)) === n);
  if (full) return full;
  const short = cameras.filter((c) => {
    const f = c.name.split("/").pop();
    return f === n || noext(f) === n;
  });
  return short.find((c) => c.split === "test") || short[0];
}

async function main() {
  const info = await getJson("info.json");
  if (info.kind === "2d") return main2d(info);
  const cameras = info.cameras ? await getJson("cameras.json") : [];
  const bg = info.background;
  const canvas = $("view");
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, alpha: false, preserveDrawingBuffer: false });
  THREE.ColorManagement.enabled = false;
  renderer.setClearColor(new THREE.Color(bg[0], bg[1], bg[2]), 1);
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera();
  camera.matrixAutoUpdate = false;
  // the projection is ours; three must not recompute it from fov/aspect
  camera.updateProjectionMatrix = () => {};
  // the reference renderer's conventions: 3-sigma footprint, alpha >= 1/255,
  // 0.3 px^2 dilation without opacity compensation, depth (not radial) order
  const spark = new SparkRenderer({
    renderer,
    maxStdDev: 3,
    minAlpha: 1 / 255,
    preBlurAmount: info.antialiased ? 0 : 0.3,
    blurAmount: info.antialiased ? 0.3 : 0,
    sortRadial: false,
    enableLod: false,
    accumExtSplats: true,
  });
  scene.add(spark);

  const near = 0.01, far = Math.max(1000, info.radius * 100);
  const up = info.up;
  let target = info.center.slice();
  const radius = info.radius || 1;
  // the current camera; `fixed` when it is a dataset camera's own size
  let cam = null;
  let fixed = false;
  let fovDeg = 50;
  // the dataset camera looked through, and its pose's key (the address
  // names it while the view is still its pose)
  let atCamera = null;

  function fitCanvas() {
    let w, h;
    if (fixed) {
      // a dataset camera's own pixels (what it saw, drawn at its size),
      // shown whole: scaled to fit the window and centred
      w = cam.w;
      h = cam.h;
      renderer.setSize(w, h, false);
      const s = Math.min(window.innerWidth / w, window.innerHeight / h);
      Object.assign(canvas.style, {
        width: `${w * s}px`,
        height: `${h * s}px`,
        left: `${(window.innerWidth - w * s) / 2}px`,
        top: `${(window.innerHeight - h * s) / 2}px`,
      });
    } else {
      w = window.innerWidth;
      h = window.innerHeight;
      // the field of view spans the window's shorter side, so a portrait
      // window (a phone) sees as wide as a landscape one sees high
      const f = Math.min(w, h) / 2 / Math.tan((fovDeg * Math.PI) / 360);
      if (cam) Object.assign(cam, { w, h, fx: f, fy: f, cx: w / 2, cy: h / 2 });
      renderer.setSize(w, h, true);
      Object.assign(canvas.style, { left: "0px", top: "0px" });
    }
    $("fovname").textContent = w < h ? "horizontal FOV" : "vertical FOV";
    // the slider shows the field of view seen: a dataset camera's own
    // while looking through it
    if (cam) {
      // (a camera wider or narrower than the slider's 10–120° widens its
      // range, so the knob sits at the camera's own value, not at an end)
      const slider = $("fov");
      slider.min = Math.max(1, Math.min(10, Math.floor(viewFov())));
      slider.max = Math.max(120, Math.min(179, Math.ceil(viewFov())));
      slider.value = viewFov();
      $("fovval").textContent = Math.round(viewFov()) + "°";
    }
  }

  function freeCamera(from) {
    cam = { R: from.R.map((r) => r.slice()), t: from.t.slice(), w: 1, h: 1, fx: 1, fy: 1, cx: 0.5, cy: 0.5 };
    fixed = false;
    atCamera = null;
    fitCanvas();
  }

  function goToCamera(c) {
    cam = { R: c.R.map((r) => r.slice()), t: c.t.slice(), w: c.width, h: c.height, fx: c.fx, fy: c.fy, cx: c.cx, cy: c.cy };
    fixed = true;
    // orbit about the point ahead at the scene centre's depth
    const C = centerOf(cam);
    const d = Math.max(dot(sub(info.center, C), cam.R[2]), radius * 0.1);
    target = add(C, mul(cam.R[2], d));
    fitCanvas();
    selectFrustum(c);
    atCamera = { name: c.name, key: poseKey() };
  }

  // ---- the address follows the view ----
  const round = (x, d) => Number(x.toFixed(d));
  function poseKey() {
    const C = centerOf(cam).map((x) => Number(x.toPrecision(7)));
    const q = toQuaternion(cam.R).map((x) => round(x, 6));
    return `${C.join(",")},${q.join(",")}`;
  }
  // the field of view across the shorter side: a dataset camera's own
  // while looking through it (the slider's otherwise)
  const viewFov = () =>
    fixed ? (360 / Math.PI) * Math.atan(cam.w < cam.h ? cam.w / (2 * cam.fx) : cam.h / (2 * cam.fy)) : fovDeg;
  // written once the view has been still for 300 ms (browsers limit how
  // often a page may replace its address: Safari throws past 100 times in
  // 30 s, which inside the frame loop would stop it)
  let written = null, pending = null, pendingAt = 0;
  function followInAddress(now) {
    const key = poseKey() + "|" + viewFov().toFixed(2);
    if (key !== pending) {
      pending = key;
      pendingAt = now;
      return;
    }
    if (key === written || now - pendingAt < 300) return;
    written = key;
    const p = new URLSearchParams(location.search);
    for (const k of ["camera", "pose", "fov"]) p.delete(k);
    if (atCamera && fixed) {
      // a dataset camera's lens: its name, and the pose once moved (with
      // its field of view, for a page that does not have that camera)
      p.set("camera", atCamera.name);
      if (atCamera.key !== poseKey()) {
        p.set("pose", poseKey());
        p.set("fov", String(round(viewFov(), 2)));
      }
    } else {
      p.set("pose", poseKey());
      p.set("fov", String(round(viewFov(), 2)));
    }
    try {
      // (commas and slashes kept readable; URLSearchParams escapes them)
      history.replaceState(history.state, "", "?" + p.toString().replace(/%2C/g, ",").replace(/%2F/g, "/"));
    } catch (e) {
      console.warn("the address was not updated:", e);
    }
  }

  function reset() {
    target = info.center.slice();
    fovDeg = info.home.fov_deg;
    freeCamera(info.home);
    $("cameras").value = "";
    // the start view is the first dataset camera's pose, when there is one
    selectFrustum(null, cameras.length ? cameras[0] : null);
  }

  // ---- dataset cameras: frusta and the selector ----
  const frusta = new THREE.Group();
  let selected = null;
  const lineMat = new THREE.LineBasicMaterial({ color: 0xff8800 });
  const selMat = new THREE.LineBasicMaterial({ color: 0x00ddff });
  const frustumLines = [];
  for (const c of cameras) {
    const C = centerOf(c);
    const d = radius * 0.08;
    const Rt = transpose(c.R);
    const corner = (u, v) => add(C, mv(Rt, [((u - c.cx) / c.fx) * d, ((v - c.cy) / c.fy) * d, d]));
    const k = [corner(0, 0), corner(c.width, 0), corner(c.width, c.height), corner(0, c.height)];
    const pts = [];
    for (let i = 0; i < 4; i++) pts.push(...C, ...k[i], ...k[i], ...k[(i + 1) % 4]);
    const g = new THREE.BufferGeometry();
    g.setAttribute("position", new THREE.Float32BufferAttribute(pts, 3));
    const l = new THREE.LineSegments(g, lineMat);
    l.userData.camera = c;
    frusta.add(l);
    frustumLines.push(l);
    const o = document.createElement("option");
    o.value = c.name;
    o.textContent = `${c.name} (${c.split})`;
    $("cameras").appendChild(o);
  }
  // the chosen camera's frustum is highlighted, the one we look through hidden
  function selectFrustum(c, at = c) {
    selected = c;
    for (const l of frustumLines) {
      l.material = l.userData.camera === c ? selMat : lineMat;
      l.visible = l.userData.camera !== at;
    }
  }
  if (cameras.length) {
    $("camrow").hidden = false;
    $("frustarow").hidden = false;
    if (showUi) scene.add(frusta);
  }
  $("frusta").addEventListener("change", (e) => (e.target.checked ? scene.add(frusta) : scene.remove(frusta)));
  $("cameras").addEventListener("change", (e) => {
    const c = cameras.find((c) => c.name === e.target.value);
    c ? goToCamera(c) : reset();
  });
  function cycle(step) {
    if (!cameras.length) return;
    const i = selected ? cameras.indexOf(selected) : -1;
    const c = cameras[(i + step + cameras.length) % cameras.length];
    $("cameras").value = c.name;
    goToCamera(c);
  }

  // ---- start view ----
  reset();
  // (a mistyped link still shows the scene: the pose alone, else the
  // camera's own view, else the start view, and one notice says why)
  const p = wantPose ? parsePose(wantPose, params.get("fov")) : null;
  const missing = [];
  if (wantCamera) {
    const c = findCamera(cameras, wantCamera);
    if (c) {
      $("cameras").value = c.name;
      goToCamera(c);
    } else missing.push(`no dataset camera named "${wantCamera}" (${cameras.length} cameras)`);
  }
  if (p && p.error) missing.push(`pose "${wantPose}": ${p.error}`);
  if (missing.length) {
    const instead = p && !p.error ? "the pose" : atCamera ? "the camera's own view" : "the start view";
    notice(`${missing.join("; ")}: ${instead} instead`);
  }
  if (p && !p.error) {
    // (a camera named and found: the view is through it)
    const lens = atCamera !== null;
    if (lens) {
      // moved away from a dataset camera, seen through its lens
      cam.R = p.R.map((r) => r.slice());
      cam.t = mul(mv(p.R, p.C), -1);
      const d = Math.max(dot(sub(info.center, p.C), p.R[2]), radius * 0.1);
      target = add(p.C, mul(p.R[2], d));
    } else {
      if (p.fov !== null) fovDeg = p.fov;
      freeCamera({ R: p.R, t: mul(mv(p.R, p.C), -1) });
      // orbit about the point ahead at the scene centre's depth
      const d = Math.max(dot(sub(info.center, p.C), p.R[2]), radius * 0.1);
      target = add(p.C, mul(p.R[2], d));
      selectFrustum(null);
    }
  }
  window.addEventListener("resize", fitCanvas);
  $("reset").addEventListener("click", reset);
  $("fov").addEventListener("input", (e) => {
    fovDeg = Number(e.target.value);
    // (freeCamera fits the canvas)
    fixed ? freeCamera(cam) : fitCanvas();
  });

  // ---- navigation ----
  function orbit(dx, dy) {
    // yaw about the scene's up axis, then pitch about the camera's right axis
    const Q1 = axisAngle(unit(up), -dx * 0.005);
    const Q2 = axisAngle(unit(mv(Q1, cam.R[0])), -dy * 0.005);
    const Q = multiply(Q2, Q1);
    const C = add(target, mv(Q, sub(centerOf(cam), target)));
    cam.R = rotateAxes(cam.R, Q);
    withCenter(cam, C);
  }
  function multiply(A, B) {
    return [0, 1, 2].map((i) => [0, 1, 2].map((j) => A[i][0] * B[0][j] + A[i][1] * B[1][j] + A[i][2] * B[2][j]));
  }
  function pan(dx, dy) {
    const C = centerOf(cam);
    // (a drag's CSS pixels in the camera's pixels: a dataset camera's
    // frame is shown scaled)
    const css = canvas.clientHeight > 0 ? cam.h / canvas.clientHeight : 1;
    const s = (Math.max(norm(sub(C, target)), radius * 0.01) / cam.fy) * css;
    const move = add(mul(cam.R[0], -dx * s), mul(cam.R[1], -dy * s));
    target = add(target, move);
    withCenter(cam, add(C, move));
  }
  function zoom(f) {
    const C = centerOf(cam);
    withCenter(cam, add(target, mul(sub(C, target), f)));
  }
  function fly(v) {
    const C = centerOf(cam);
    const m = add(add(mul(cam.R[0], v[0]), mul(cam.R[1], v[1])), mul(cam.R[2], v[2]));
    target = add(target, m);
    withCenter(cam, add(C, m));
  }
  let drag = null;
  // the whole window navigates, the margins beside a dataset camera's
  // frame too (not the overlays: their controls keep their own drags)
  const onView = (type, handler, opts) =>
    document.body.addEventListener(type, (e) => {
      if (e.target === canvas || e.target === document.body) handler(e);
    }, opts);
  onView("contextmenu", (e) => e.preventDefault());
  onView("pointerdown", (e) => {
    e.target.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, y: e.clientY, pan: e.button === 2 || e.shiftKey };
  });
  onView("pointermove", (e) => {
    if (!drag || e.pointerType === "touch") return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    drag.x = e.clientX;
    drag.y = e.clientY;
    drag.pan ? pan(dx, dy) : orbit(dx, dy);
  });
  onView("pointerup", () => (drag = null));
  // a click (not a drag) on a frustum goes to that camera
  let downAt = null;
  onView("pointerdown", (e) => (downAt = [e.clientX, e.clientY]));
  const ray = new THREE.Raycaster();
  ray.params.Line.threshold = radius * 0.02;
  canvas.addEventListener("click", (e) => {
    if (!downAt || Math.hypot(e.clientX - downAt[0], e.clientY - downAt[1]) > 4 || !frusta.parent) return;
    const r = canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(((e.clientX - r.left) / r.width) * 2 - 1, 1 - ((e.clientY - r.top) / r.height) * 2);
    applyCamera(camera, cam, near, far);
    ray.setFromCamera(ndc, camera);
    const hit = ray.intersectObjects(frustumLines.filter((l) => l.visible), false)[0];
    if (hit) {
      const c = hit.object.userData.camera;
      $("cameras").value = c.name;
      goToCamera(c);
    }
  });
  onView("wheel", (e) => {
    e.preventDefault();
    zoom(Math.exp(e.deltaY * 0.001));
  }, { passive: false });
  // touch: one finger orbits, two fingers pinch-zoom and pan
  let touches = null;
  const touchInfo = (ts) => {
    const p = [...ts].map((t) => [t.clientX, t.clientY]);
    const cx = p.reduce((s, q) => s + q[0], 0) / p.length, cy = p.reduce((s, q) => s + q[1], 0) / p.length;
    const d = p.length > 1 ? Math.hypot(p[0][0] - p[1][0], p[0][1] - p[1][1]) : 0;
    return { n: p.length, cx, cy, d };
  };
  onView("touchstart", (e) => { e.preventDefault(); touches = touchInfo(e.touches); }, { passive: false });
  onView("touchmove", (e) => {
    e.preventDefault();
    const t = touchInfo(e.touches);
    if (touches && t.n === touches.n) {
      if (t.n === 1) orbit(t.cx - touches.cx, t.cy - touches.cy);
      else {
        pan(t.cx - touches.cx, t.cy - touches.cy);
        if (touches.d > 0 && t.d > 0) zoom(touches.d / t.d);
      }
    }
    touches = t;
  }, { passive: false });
  onView("touchend", (e) => (touches = e.touches.length ? touchInfo(e.touches) : null));
  const keys = new Set();
  window.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.key === "[") cycle(-1);
    else if (e.key === "]") cycle(1);
    else if (e.key === "r" || e.key === "R") reset();
    else keys.add(e.key.toLowerCase());
  });
  window.addEventListener("keyup", (e) => keys.delete(e.key.toLowerCase()));
  window.addEventListener("blur", () => keys.clear());

  // ---- the model (reloaded when a live run publishes a new one) ----
  let mesh = null;
  let loading = false;
  async function loadModel(version, count) {
    loading = true;
    try {
      // a static site (`view --export`) names its model file; the server
      // answers model.ply with the version it is asked for
      const file = info.model || "model.ply";
      const ext = file.slice(file.lastIndexOf(".") + 1);
      // Spark's name for a .sog (a zip) is "pcsogszip"; the others are
      // their extensions
      const fileType = ext === "sog" ? "pcsogszip" : ext;
      const m = new SplatMesh({ url: `${file}?v=${version}`, fileType, extSplats: true });
      // .spz stores right-up-back axes (y and z negated from the PLY's, as
      // Niantic's library writes it) and Spark draws them as stored: turn
      // the mesh half a turn about x back into the PLY's frame
      if (fileType === "spz") m.quaternion.set(1, 0, 0, 0);
      await m.initialized;
      scene.add(m);
      if (mesh) {
        scene.remove(mesh);
        mesh.dispose();
      }
      mesh = m;
      state.version = version;
      state.splats = count;
      state.loadedAt = performance.now();
      state.framesAtLoad = state.frames;
      state.loads = (state.loads || 0) + 1;
      state.ready = false;
      $("count").textContent = count.toLocaleString();
    } finally {
      loading = false;
    }
  }
  await loadModel(info.version, info.splats);
  if (info.live) setupLive(loadModel, () => loading);

  // ---- frame loop ----
  let last = performance.now();
  let fpsFrames = 0, fpsStart = last;
  renderer.setAnimationLoop(() => {
    const now = performance.now();
    const dt = Math.min(0.1, (now - last) / 1000);
    last = now;
    if (keys.size) {
      const s = radius * 0.5 * dt * (keys.has("shift") ? 4 : 1);
      const v = [0, 0, 0];
      if (keys.has("w")) v[2] += s;
      if (keys.has("s")) v[2] -= s;
      if (keys.has("d")) v[0] += s;
      if (keys.has("a")) v[0] -= s;
      if (keys.has("e")) v[1] -= s;
      if (keys.has("q")) v[1] += s;
      if (v.some((x) => x)) fly(v);
    }
    applyCamera(camera, cam, near, far);
    renderer.render(scene, camera);
    followInAddress(now);
    state.frames++;
    fpsFrames++;
    if (now - fpsStart > 1000) {
      const fps = (fpsFrames * 1000) / (now - fpsStart);
      $("fps").textContent = fps.toFixed(fps < 10 ? 1 : 0);
      state.fps = fps;
      fpsFrames = 0;
      fpsStart = now;
    }
    // Spark sorts in a worker: call the view ready after some frames
    if (!state.ready && state.loadedAt && state.frames - state.framesAtLoad > 5 && now - state.loadedAt > 1000) {
      state.ready = true;
    }
  });

  // for tests and benchmarks: render the current view and read its pixels (RGB, top row first)
  window.__capture = () => {
    applyCamera(camera, cam, near, far);
    renderer.render(scene, camera);
    const gl = renderer.getContext();
    const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
    const px = new Uint8Array(w * h * 4);
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    let hex = "";
    const digits = "0123456789abcdef";
    const parts = [];
    for (let y = h - 1; y >= 0; y--) {
      hex = "";
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 4;
        for (let c = 0; c < 3; c++) hex += digits[px[i + c] >> 4] + digits[px[i + c] & 15];
      }
      parts.push(hex);
    }
    return { width: w, height: h, rgb: parts.join("") };
  };
  // for benchmarks: mean milliseconds per frame over n frames drawn back to back
  window.__frameTime = (n) => {
    const gl = renderer.getContext();
    const px = new Uint8Array(4);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      renderer.render(scene, camera);
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
    }
    return (performance.now() - t0) / n;
  };
}

// ---- live training: new models and the curves ----
function setupLive(loadModel, isLoading) {
  $("live").hidden = false;
  const poll = async () => {
    try {
      const info = await getJson("info.json");
      // a new snapshot only once the last one is on screen: a slow GPU
      // shows fewer snapshots rather than none
      if (info.version !== state.version && !isLoading() && state.ready) await loadModel(info.version, info.splats);
      const stats = await getJson("stats.json");
      drawCurves(stats);
    } catch (e) {
      // the run may have ended: keep the last model on screen
      $("livestats").textContent = "training stopped (" + e.message + ")";
    }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

function drawCurves(stats) {
  const pts = stats.points;
  const last = pts[pts.length - 1];
  if (last) {
    const its = stats.iterations_per_second;
    $("livestats").textContent =
      `iteration ${last.iteration} · loss ${last.loss.toFixed(4)} · PSNR ${last.psnr.toFixed(2)} dB · ` +
      `${last.gaussians.toLocaleString()} Gaussians · ${its.toFixed(1)} it/s`;
    $("livehud").textContent = ` · training: iteration ${last.iteration}`;
  }
  const c = $("curves");
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (pts.length < 2) return;
  const x0 = pts[0].iteration, x1 = last.iteration || 1;
  const plot = (key, color, y) => {
    const v = pts.map((p) => p[key]).filter(Number.isFinite);
    if (!v.length) return;
    const lo = Math.min(...v), hi = Math.max(...v);
    g.strokeStyle = color;
    g.beginPath();
    pts.forEach((p, i) => {
      const px = ((p.iteration - x0) / Math.max(1, x1 - x0)) * (c.width - 10) + 5;
      const py = y + 70 - ((p[key] - lo) / (hi - lo || 1)) * 60;
      i ? g.lineTo(px, py) : g.moveTo(px, py);
    });
    g.stroke();
    g.fillStyle = color;
    g.fillText(`${key} ${lo.toPrecision(3)}–${hi.toPrecision(3)}`, 6, y + 10);
  };
  plot("loss", "#f84", 0);
  plot("psnr", "#4cf", 80);
}

// ---- 2D fits: the server renders the image at the zoom shown ----
async function main2d(info) {
  $("view").hidden = true;
  $("panel").hidden = true;
  const img = $("fit");
  img.hidden = false;
  let zoom = Math.min(window.innerWidth / info.width, window.innerHeight / info.height);
  let ox = (window.innerWidth - info.width * zoom) / 2, oy = (window.innerHeight - info.height * zoom) / 2;
  let shownScale = 0;
  let timer = null;
  const place = () => {
    img.style.width = info.width * zoom + "px";
    img.style.height = info.height * zoom + "px";
    img.style.transform = `translate(${ox}px, ${oy}px)`;
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  };
  const refresh = () => {
    // render at the displayed resolution, within the server's pixel cap
    const want = Math.min(zoom * (window.devicePixelRatio || 1), info.max_scale);
    if (Math.abs(want - shownScale) / want < 0.05) return;
    const next = new Image();
    next.onload = () => {
      img.src = next.src;
      shownScale = want;
      state.ready = true;
    };
    next.src = `fit.png?scale=${want.toFixed(4)}`;
  };
  $("hud").textContent = `2D fit: ${info.splats.toLocaleString()} Gaussians, ${info.width}×${info.height} · wheel: zoom · drag: pan`;
  let drag = null;
  img.addEventListener("pointerdown", (e) => {
    img.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, y: e.clientY };
    e.preventDefault();
  });
  img.addEventListener("pointermove", (e) => {
    if (!drag) return;
    ox += e.clientX - drag.x;
    oy += e.clientY - drag.y;
    drag = { x: e.clientX, y: e.clientY };
    place();
  });
  img.addEventListener("pointerup", () => (drag = null));
  window.addEventListener("wheel", (e) => {
    e.preventDefault();
    const f = Math.exp(-e.deltaY * 0.001);
    ox = e.clientX - (e.clientX - ox) * f;
    oy = e.clientY - (e.clientY - oy) * f;
    zoom *= f;
    place();
  }, { passive: false });
  place();
  refresh();
}

main().catch(fail);
