#!/usr/bin/env python3
"""Copy a COLMAP capture, scaling each photo's colours by a per-view
exposure/white-balance gain (view k: gain 0.6..1.4 and a tint), to test
--exposure. Usage: expose.py SRC DST"""
import os, shutil, struct, sys, zlib, math
src, dst = sys.argv[1], sys.argv[2]
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(src, dst)
def read_png(p):
    d = open(p, 'rb').read(); pos = 8; idat = b''; w = h = 0; ct = 2
    while pos < len(d):
        n = struct.unpack('>I', d[pos:pos+4])[0]; t = d[pos+4:pos+8]; c = d[pos+8:pos+8+n]
        if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', c[:10])
        if t == b'IDAT': idat += c
        pos += 12 + n
    ch = {2: 3, 6: 4}[ct]; raw = zlib.decompress(idat); stride = w * ch
    out = bytearray(); prev = bytearray(stride); i = 0
    for y in range(h):
        f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
        for x in range(stride):
            a = line[x-ch] if x >= ch else 0; b = prev[x]; c = prev[x-ch] if x >= ch else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line; prev = line
    if ch == 4:
        out = bytearray(v for k, v in enumerate(out) if k % 4 != 3)
    return w, h, out
def write_png(p, w, h, rgb):
    raw = b''.join(b'\x00' + bytes(rgb[y*w*3:(y+1)*w*3]) for y in range(h))
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(p, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
names = sorted(os.listdir(dst + '/images'))
for k, n in enumerate(names):
    g = 1.0 + 0.4 * math.sin(1.7 * k)
    tint = [g * (1 + 0.08 * math.sin(0.9 * k + c)) for c in range(3)]
    w, h, rgb = read_png(dst + '/images/' + n)
    rgb = bytes(min(255, int(v * tint[q % 3] + 0.5)) for q, v in enumerate(rgb))
    write_png(dst + '/images/' + n, w, h, rgb)
print(len(names), 'photos re-exposed')
