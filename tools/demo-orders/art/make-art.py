#!/usr/bin/env python3
"""Writes the demo shop's artwork PNGs (RGBA, 300 dpi) next to this script.

Run once by hand; the PNGs are committed and their sha256 is in ../orders/*.json. Uses only the
standard library (zlib + struct), so the bytes depend on nothing but Python's zlib.
"""
import math, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))

def png(path, w, h, pixel):
    rows = bytearray()
    for y in range(h):
        rows.append(0)
        for x in range(w):
            rows.extend(pixel(x, y))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ppm = round(300 / 0.0254)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))
    with open(os.path.join(HERE, path), "wb") as f:
        f.write(data)

def disc(cx, cy, r, inside, outside=(0, 0, 0, 0)):
    return lambda x, y: inside(x, y) if (x - cx) ** 2 + (y - cy) ** 2 <= r * r else outside

# A sun: orange disc with rays (transparent around it).
def sun(x, y):
    dx, dy = x - 300, y - 300
    r = math.hypot(dx, dy)
    if r <= 170: return (255, 140, 0, 255)
    if r <= 290 and int((math.atan2(dy, dx) + math.pi) / (math.pi / 12)) % 2 == 0: return (255, 200, 40, 255)
    return (0, 0, 0, 0)

png("ORD-DEMO-0001-front.png", 600, 600, sun)
# Stripes: a back print, opaque.
png("ORD-DEMO-0002-back.png", 500, 400, lambda x, y: (30, 60, 200, 255) if (x // 50) % 2 else (240, 240, 240, 255))
# A pocket badge: green disc.
png("ORD-DEMO-0003-pocket.png", 300, 300, disc(150, 150, 140, lambda x, y: (20, 140, 60, 255)))
# A large front with a half-transparent band.
png("ORD-DEMO-0003-front-large.png", 610, 500,
    lambda x, y: (200, 30, 60, 128) if 200 <= y < 300 else (20, 20, 20, 255))
# Economy front (cancelled in the demo).
png("ORD-DEMO-0005-front.png", 500, 500, disc(250, 250, 240, lambda x, y: (250, 250, 250, 255)))
