#!/usr/bin/env python3
"""Make a synthetic COLMAP capture of a textured room: a ground-truth
Gaussian scene (room.ply), 60 cameras 320x240 inside looking across the
room, COLMAP text model with noisy sparse points; images are rendered
afterwards with `chainrule render room.ply --data DIR`."""
import math, random, struct, sys, os, zlib

random.seed(7)
out = sys.argv[1]
os.makedirs(out + "/sparse/0", exist_ok=True)
os.makedirs(out + "/images", exist_ok=True)

W, H, F = 320, 240, 280.0
# room: x in [-2.5,2.5], y (down) in [-1.3,1.3], z in [-2.5,2.5]
RX, RY, RZ = 2.5, 1.3, 2.5

def tex(u, v, k):
    # procedural texture: stripes + blobs + checker, per surface k
    r = 0.5 + 0.25 * math.sin(7.0 * u + 1.3 * k) * math.cos(5.0 * v + 0.7 * k)
    g = 0.5 + 0.25 * math.sin(11.0 * v + 2.1 * k + 3 * u)
    b = 0.5 + 0.2 * math.cos(13.0 * u - 9.0 * v + k)
    if (int(u * 4 + 10) + int(v * 4 + 10)) % 2 == 0:
        r, g, b = r * 0.6, g * 0.6, b * 0.6
    # fine detail
    d = 0.12 * math.sin(41.0 * u) * math.sin(37.0 * v + k)
    return [min(1, max(0, c + d)) for c in (r, g, b)]

G = []  # (pos, scale(3), quat, rgb)
def plane(origin, du, dv, nu, nv, k, step):
    # du, dv: edge vectors; Gaussians on a grid with jitter; normal = du x dv
    lu = math.sqrt(sum(c * c for c in du)); lv = math.sqrt(sum(c * c for c in dv))
    eu = [c / lu for c in du]; ev = [c / lv for c in dv]
    n = [eu[1]*ev[2]-eu[2]*ev[1], eu[2]*ev[0]-eu[0]*ev[2], eu[0]*ev[1]-eu[1]*ev[0]]
    # rotation matrix columns (eu, ev, n) -> quaternion
    m = [[eu[0], ev[0], n[0]], [eu[1], ev[1], n[1]], [eu[2], ev[2], n[2]]]
    tr = m[0][0] + m[1][1] + m[2][2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2; q = [0.25 * s, (m[2][1]-m[1][2])/s, (m[0][2]-m[2][0])/s, (m[1][0]-m[0][1])/s]
    elif m[0][0] > m[1][1] and m[0][0] > m[2][2]:
        s = math.sqrt(1.0 + m[0][0] - m[1][1] - m[2][2]) * 2; q = [(m[2][1]-m[1][2])/s, 0.25*s, (m[0][1]+m[1][0])/s, (m[0][2]+m[2][0])/s]
    elif m[1][1] > m[2][2]:
        s = math.sqrt(1.0 + m[1][1] - m[0][0] - m[2][2]) * 2; q = [(m[0][2]-m[2][0])/s, (m[0][1]+m[1][0])/s, 0.25*s, (m[1][2]+m[2][1])/s]
    else:
        s = math.sqrt(1.0 + m[2][2] - m[0][0] - m[1][1]) * 2; q = [(m[1][0]-m[0][1])/s, (m[0][2]+m[2][0])/s, (m[1][2]+m[2][1])/s, 0.25*s]
    cu = max(1, int(lu / step)); cv = max(1, int(lv / step))
    for i in range(cu):
        for j in range(cv):
            a = (i + random.random()) / cu; b = (j + random.random()) / cv
            p = [origin[t] + a * du[t] + b * dv[t] for t in range(3)]
            G.append((p, [0.7 * step, 0.7 * step, 0.1 * step], q, tex(a * lu, b * lv, k)))

step = 0.035
# walls (inward facing doesn't matter for Gaussians)
plane([-RX, -RY, RZ], [2*RX, 0, 0], [0, 2*RY, 0], 0, 0, 1, step)   # far +z wall
plane([-RX, -RY, -RZ], [2*RX, 0, 0], [0, 2*RY, 0], 0, 0, 2, step)  # -z wall
plane([RX, -RY, -RZ], [0, 0, 2*RZ], [0, 2*RY, 0], 0, 0, 3, step)   # +x wall
plane([-RX, -RY, -RZ], [0, 0, 2*RZ], [0, 2*RY, 0], 0, 0, 4, step)  # -x wall
plane([-RX, RY, -RZ], [2*RX, 0, 0], [0, 0, 2*RZ], 0, 0, 5, step)   # floor (y down = +y)
plane([-RX, -RY, -RZ], [2*RX, 0, 0], [0, 0, 2*RZ], 0, 0, 6, step*1.5)  # ceiling
# objects: a few boxes on the floor
for k, (cx, cz, sx, sy, sz) in enumerate([(0.0, 0.0, 0.5, 0.8, 0.5), (0.9, 0.6, 0.35, 0.5, 0.35), (-0.8, -0.7, 0.4, 0.6, 0.3), (-0.6, 0.9, 0.3, 1.1, 0.3)]):
    y0 = RY - sy
    s2 = step * 0.6
    plane([cx-sx, y0, cz-sz], [2*sx, 0, 0], [0, sy, 0], 0, 0, 10+k, s2)
    plane([cx-sx, y0, cz+sz], [2*sx, 0, 0], [0, sy, 0], 0, 0, 11+k, s2)
    plane([cx-sx, y0, cz-sz], [0, 0, 2*sz], [0, sy, 0], 0, 0, 12+k, s2)
    plane([cx+sx, y0, cz-sz], [0, 0, 2*sz], [0, sy, 0], 0, 0, 13+k, s2)
    plane([cx-sx, y0, cz-sz], [2*sx, 0, 0], [0, 0, 2*sz], 0, 0, 14+k, s2)
print("gaussians", len(G), file=sys.stderr)

C0 = 0.28209479177387814
with open(out + "/room.ply", "wb") as f:
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    hdr = "ply\nformat binary_little_endian 1.0\nelement vertex %d\n" % len(G) + "".join("property float %s\n" % n for n in names) + "end_header\n"
    f.write(hdr.encode())
    for p, s, q, c in G:
        vals = p + [(x - 0.5) / C0 for x in c] + [6.0] + [math.log(x) for x in s] + q
        f.write(struct.pack("<14f", *vals))

def normalize(v):
    l = math.sqrt(sum(c*c for c in v)); return [c/l for c in v]
def cross(a, b):
    return [a[1]*b[2]-a[2]*b[1], a[2]*b[0]-a[0]*b[2], a[0]*b[1]-a[1]*b[0]]
def rot2quat(m):
    tr = m[0][0] + m[1][1] + m[2][2]
    s = math.sqrt(max(tr + 1.0, 1e-12)) * 2
    if tr > 0:
        return [0.25*s, (m[2][1]-m[1][2])/s, (m[0][2]-m[2][0])/s, (m[1][0]-m[0][1])/s]
    if m[0][0] > m[1][1] and m[0][0] > m[2][2]:
        s = math.sqrt(1.0 + m[0][0] - m[1][1] - m[2][2]) * 2; return [(m[2][1]-m[1][2])/s, 0.25*s, (m[0][1]+m[1][0])/s, (m[0][2]+m[2][0])/s]
    if m[1][1] > m[2][2]:
        s = math.sqrt(1.0 + m[1][1] - m[0][0] - m[2][2]) * 2; return [(m[0][2]-m[2][0])/s, (m[0][1]+m[1][0])/s, 0.25*s, (m[1][2]+m[2][1])/s]
    s = math.sqrt(1.0 + m[2][2] - m[0][0] - m[1][1]) * 2; return [(m[1][0]-m[0][1])/s, (m[0][2]+m[2][0])/s, (m[1][2]+m[2][1])/s, 0.25*s]

def png(path, w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb[y*w*3:(y+1)*w*3]) for y in range(h))
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

with open(out + "/sparse/0/cameras.txt", "w") as f:
    f.write("1 PINHOLE %d %d %f %f %f %f\n" % (W, H, F, F, W/2, H/2))
lines = []
grey = [128] * (W * H * 3)
for i in range(60):
    th = 2 * math.pi * i / 60 + random.uniform(-0.05, 0.05)
    r = 1.3 + random.uniform(-0.2, 0.2)
    c = [r * math.cos(th), random.uniform(-0.5, 0.1), r * math.sin(th)]
    # look across the room, past the centre, with jitter
    tgt = [-1.2 * math.cos(th + 0.4 * math.sin(3*i)) , 0.3 + random.uniform(-0.2, 0.3), -1.2 * math.sin(th + 0.4 * math.sin(3*i))]
    z = normalize([tgt[k] - c[k] for k in range(3)])
    x = normalize(cross([0, 1, 0], z))  # y down: x = down x forward -> right
    x = [-v for v in x] if False else x
    y = cross(z, x)
    Rm = [x, y, z]  # rows: world->camera
    t = [-sum(Rm[a][b] * c[b] for b in range(3)) for a in range(3)]
    q = rot2quat(Rm)
    name = "img_%03d.png" % i
    lines.append("%d %f %f %f %f %f %f %f 1 %s\n\n" % (i + 1, q[0], q[1], q[2], q[3], t[0], t[1], t[2], name))
    png(out + "/images/" + name, W, H, grey)
with open(out + "/sparse/0/images.txt", "w") as f:
    f.write("".join(lines))
# sparse points: a sample of surface Gaussians with noise
with open(out + "/sparse/0/points3D.txt", "w") as f:
    for k in range(5000):
        p, s, q, col = random.choice(G)
        pn = [p[a] + random.gauss(0, 0.01) for a in range(3)]
        f.write("%d %f %f %f %d %d %d 0.5\n" % (k + 1, pn[0], pn[1], pn[2], int(col[0]*255), int(col[1]*255), int(col[2]*255)))
