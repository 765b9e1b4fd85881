#!/usr/bin/env python3
"""Peak resident memory of a relay above its idle level, for scenario 4 of issue 5.

usage: memwatch.py PID [--tree]

Prints "idle KIB" at once, then samples until SIGTERM and prints "peak KIB". For one process
the peak is the kernel's VmHWM, reset to the current level first through clear_refs, so no
spike between samples is missed; for a tree (Postfix) it is the largest sampled sum of Pss.
"""
import signal
import sys
import time

from procmem import resident_kib, status_kib

pid, whole_tree = int(sys.argv[1]), "--tree" in sys.argv
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
idle = resident_kib(pid, whole_tree)
if not whole_tree:
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")
print("idle", idle, flush=True)
peak = idle
while not stop:
    peak = max(peak, resident_kib(pid, whole_tree))
    time.sleep(0.02)
if not whole_tree:
    peak = max(peak, status_kib(pid, "VmHWM"))
print("peak", peak, flush=True)
