#!/usr/bin/env python3
"""What a perfect model could score on a capture made by
crates/splat/tests/fixtures/make_colmap_capture.py (which keeps the true
scene and poses in truth.json): the true scene re-rendered for each
held-out photo (every 8th by name, as `train` holds them out) and scored
against the photo itself, 4-pixel border left out.

    venv/bin/python capture_ceiling.py CAPTURE [--seed 0] [--views 60]

Rows per view:
  true 2x2     the photo's own renderer at the true pose (sanity: inf)
  true 1x1     one ray per pixel centre (the photo's aliasing)
  true 8x8     64 rays per pixel: the band-limited scene a consistent
               3D model converges to (its aliasing removed)
  colmap 2x2   the photo's renderer at COLMAP's estimate of the camera
               (intrinsics, distortion, and pose mapped into the true
               frame by a similarity fitted to all camera centres)
  colmap 8x8   the same with 64 rays per pixel
Needs numpy, pillow, pycolmap (nothing here runs in CI).
"""
import argparse
import json
import os
import sys

import numpy as np
import pycolmap
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "../../crates/splat/tests/fixtures"))
import make_colmap_capture as M  # noqa: E402


def umeyama(src, dst):
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.diag([1, 1, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = (S * np.diag(D)).sum() / (a ** 2).sum() * len(src)
    return s, R, md - s * R @ ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cap")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    tr = json.load(open(os.path.join(a.cap, "truth.json")))
    views = {v["name"]: v for v in tr["views"]}
    W, H, f_true, k_true = tr["width"], tr["height"], tr["focal"], tr.get("k1", 0.0)
    # the scene, exactly as the generator drew it from its seed
    rng = np.random.default_rng(a.seed)
    walls = [M.texture(rng) for _ in range(6)]
    spheres = [(np.array([0.3, 0.2, 0.5]), 0.45, M.texture(rng, 128, 60)),
               (np.array([-0.7, -0.4, 0.35]), 0.35, M.texture(rng, 128, 60)),
               (np.array([0.9, -0.6, 0.3]), 0.3, M.texture(rng, 128, 60))]
    light = np.array([0.5, -0.4, 2.2])
    rec = pycolmap.Reconstruction(os.path.join(a.cap, "sparse/0"))
    ims = {im.name: im for im in rec.images.values()}
    names = sorted(ims)
    C, E = [], []
    for n in names:
        p = ims[n].cam_from_world()
        C.append(-p.rotation.matrix().T @ p.translation)
        E.append(views[n]["eye"])
    s, Rs, ts = umeyama(np.array(C), np.array(E))
    ys, xs = np.mgrid[0:H, 0:W]
    keep = np.zeros((H, W), bool)
    keep[4:-4, 4:-4] = True

    def shoot(eye, world_from_cam, f, cx, cy, k, n):
        acc = np.zeros((H * W, 3))
        for i in range(n):
            for j in range(n):
                qx = (xs + (i + 0.5) / n - cx) / f
                qy = (ys + (j + 0.5) / n - cy) / f
                px, py = qx.copy(), qy.copy()
                for _ in range(50):
                    d = 1 + k * (px * px + py * py)
                    px, py = qx / d, qy / d
                d = np.stack([px, py, np.ones_like(px)], -1).reshape(-1, 3) @ world_from_cam.T
                d /= np.linalg.norm(d, axis=1, keepdims=True)
                acc += M.render(eye, d, walls, spheres, light) / (n * n)
        return (np.clip(acc.reshape(H, W, 3), 0, 1) * 255 + 0.5).astype(np.uint8)

    def psnr(x, y):
        e = ((x.astype(float) - y.astype(float)) / 255) ** 2
        return -10 * np.log10(e[keep].mean())

    cam = rec.cameras[ims[names[0]].camera_id]
    if cam.model.name == "SIMPLE_RADIAL":
        fc, cxc, cyc, kc = cam.params
    elif cam.model.name == "SIMPLE_PINHOLE":
        (fc, cxc, cyc), kc = cam.params, 0.0
    else:
        raise SystemExit("camera model %s not handled" % cam.model.name)
    print("COLMAP camera %s f %.3f c (%.2f, %.2f) k %.5f; true f %.1f k %.3f"
          % (cam.model.name, fc, cxc, cyc, kc, f_true, k_true))
    rows = ["true 2x2", "true 1x1", "true 8x8", "colmap 2x2", "colmap 8x8"]
    mse = {r: [] for r in rows}
    for idx, n in enumerate(names):
        if idx % 8:
            continue
        photo = np.asarray(Image.open(os.path.join(a.cap, "images", n)).convert("RGB"))
        v = views[n]
        Rt, eye = np.array(v["rotation"]), np.array(v["eye"])
        p = ims[n].cam_from_world()
        Rc = p.rotation.matrix()
        eye_c = s * Rs @ (-Rc.T @ p.translation) + ts
        wfc_c = Rs @ Rc.T
        out = {
            "true 2x2": shoot(eye, Rt.T, f_true, W / 2, H / 2, k_true, 2),
            "true 1x1": shoot(eye, Rt.T, f_true, W / 2, H / 2, k_true, 1),
            "true 8x8": shoot(eye, Rt.T, f_true, W / 2, H / 2, k_true, 8),
            "colmap 2x2": shoot(eye_c, wfc_c, fc, cxc, cyc, kc, 2),
            "colmap 8x8": shoot(eye_c, wfc_c, fc, cxc, cyc, kc, 8),
        }
        line = []
        for r in rows:
            e = ((out[r].astype(float) - photo.astype(float)) / 255) ** 2
            mse[r].append(e[keep].mean())
            line.append("%s %.2f" % (r, psnr(out[r], photo)))
        print(n, " | ".join(line), flush=True)
    print("mean of per-view PSNR:", " | ".join(
        "%s %.2f" % (r, np.mean([-10 * np.log10(m) for m in mse[r]])) for r in rows))


if __name__ == "__main__":
    main()
