#!/usr/bin/env python3
"""Plots the test-PSNR curve of `chainrule train --eval-every S` (the
`curve` of OUT/metrics.json) as an SVG, standard library only.
Usage: plot_train_curve.py OUT/metrics.json curve.svg  (then rsvg-convert -o curve.png curve.svg)"""
import json
import sys

m = json.load(open(sys.argv[1]))
pts = [(p["seconds"], p["psnr"], p["iteration"], p["gaussians"]) for p in m["curve"]]
W, H, L, R, T, B = 640, 400, 60, 20, 30, 50
xmax = max(p[0] for p in pts) * 1.05
ymin = min(p[1] for p in pts) // 5 * 5
ymax = (max(p[1] for p in pts) // 5 + 1) * 5
X = lambda s: L + (W - L - R) * s / xmax
Y = lambda v: H - B - (H - T - B) * (v - ymin) / (ymax - ymin)
o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
     f'<rect width="{W}" height="{H}" fill="white"/>',
     f'<text x="{W/2}" y="18" text-anchor="middle" font-size="14">chainrule train on synth (200x200, 100 views): test PSNR vs time</text>']
v = ymin
while v <= ymax:
    o.append(f'<line x1="{L}" x2="{W-R}" y1="{Y(v)}" y2="{Y(v)}" stroke="#ddd"/>')
    o.append(f'<text x="{L-6}" y="{Y(v)+4}" text-anchor="end">{v:g}</text>')
    v += 5
step = 60 if xmax > 240 else 30
s = 0
while s <= xmax:
    o.append(f'<line y1="{T}" y2="{H-B}" x1="{X(s)}" x2="{X(s)}" stroke="#eee"/>')
    o.append(f'<text x="{X(s)}" y="{H-B+16}" text-anchor="middle">{s:g}</text>')
    s += step
o.append(f'<line x1="{L}" x2="{W-R}" y1="{H-B}" y2="{H-B}" stroke="black"/>')
o.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H-B}" stroke="black"/>')
o.append(f'<text x="{(L+W-R)/2}" y="{H-12}" text-anchor="middle">training seconds (evaluation excluded)</text>')
o.append(f'<text x="16" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 16 {(T+H-B)/2})">test PSNR (dB)</text>')
o.append('<polyline fill="none" stroke="#c33" stroke-width="2" points="' + " ".join(f"{X(p[0])},{Y(p[1])}" for p in pts) + '"/>')
for p in pts:
    o.append(f'<circle cx="{X(p[0])}" cy="{Y(p[1])}" r="3" fill="#c33"/>')
o.append('</svg>')
open(sys.argv[2], "w").write("\n".join(o))
