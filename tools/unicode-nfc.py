#!/usr/bin/python3
"""Writes src/Sombra/Submission/Nfc.data, the tables of Sombra's own Unicode NFC (Nfc.cs).

Sombra runs with InvariantGlobalization, where string.Normalize leaves non-ASCII text as it is,
so the opt-out list carries its own tables, taken from Python's unicodedata. Lines:
  c FIRST LAST CLASS    canonical combining class of a range of code points
  d CP A [B] [+]        canonical decomposition of CP (one level); + when A B compose back to CP
Hangul syllables are algorithmic and not listed. Run: /usr/bin/python3 tools/unicode-nfc.py
"""
import os, unicodedata

lines = [f"# Unicode {unicodedata.unidata_version}, from Python's unicodedata by tools/unicode-nfc.py; do not edit"]
first = None
for cp in range(0x110001):
    cls = unicodedata.combining(chr(cp)) if cp < 0x110000 else 0
    if first is not None and (cls != first[1] or cp != last + 1):
        lines.append(f"c {first[0]:X} {last:X} {first[1]}")
        first = None
    if cls and first is None:
        first = (cp, cls)
    if cls:
        last = cp
for cp in range(0x110000):
    c = chr(cp)
    d = unicodedata.decomposition(c)
    if not d or d.startswith("<"):
        continue
    parts = d.split()
    composes = len(parts) == 2 and unicodedata.normalize("NFC", unicodedata.normalize("NFD", c)) == c
    lines.append(f"d {cp:X} {' '.join(parts)}" + (" +" if composes else ""))

out = os.path.join(os.path.dirname(__file__), "..", "src", "Sombra", "Submission", "Nfc.data")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
