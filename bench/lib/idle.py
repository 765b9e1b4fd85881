#!/usr/bin/env python3
"""Scenario 5 of issue 5: many idle connections, and whether mail still gets through.

usage: idle.py PORT COUNT WAIT RELAY_PID [--tree]

Opens COUNT connections to 127.0.0.1:PORT and waits up to WAIT seconds for their greetings,
then holds them open without a word, measures the relay's resident memory (summed over its
processes with --tree) and sends one message on a new connection, waiting at most WAIT seconds
for each reply. Prints "key value" lines; exits 0 whatever the relay did.
"""
import resource
import selectors
import smtplib
import socket
import sys
import time

from procmem import resident_kib

port, count, wait, relay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
whole_tree = "--tree" in sys.argv

# Each connection is a descriptor here and in the relay; the default soft limit is 1,024.
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

idle_kib = resident_kib(relay, whole_tree)
selector = selectors.DefaultSelector()
replies = {}
for _ in range(count):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    selector.register(s, selectors.EVENT_READ)
    replies[s] = b""

greeted = refused = broken = 0
deadline = time.monotonic() + wait
while len(selector.get_map()) and time.monotonic() < deadline:
    for key, _ in selector.select(timeout=0.5):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            broken += 1
            selector.unregister(s)
            continue
        replies[s] += data
        lines = replies[s].split(b"\r\n")
        # The greeting may run over several lines; the last has a space after its code.
        final = [line for line in lines[:-1] if line[3:4] == b" "]
        if final:
            if final[0].startswith(b"220"):
                greeted += 1
            else:
                refused += 1
            selector.unregister(s)
waiting = len(selector.get_map())

time.sleep(1)  # let the relay settle what the last greetings allocated
held_kib = resident_kib(relay, whole_tree)

started = time.monotonic()
try:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=wait) as smtp:
        smtp.sendmail("a@client.example", ["b@dest.example"],
                      b"From: <a@client.example>\r\nTo: <b@dest.example>\r\nSubject: meanwhile\r\n\r\n"
                      b"sent while many connections are idle\r\n")
    outcome = f"{time.monotonic() - started:.3f}"
except (OSError, smtplib.SMTPException) as e:
    outcome = f"none ({type(e).__name__} after {time.monotonic() - started:.0f} s)"

print("idle_kib", idle_kib)
print("held_kib", held_kib)
print("greeted", greeted)
print("refused", refused)
print("broken", broken)
print("waiting", waiting)
print("new_250_s", outcome)
for s in replies:
    s.close()
