"""A next hop for the delivery tests: aiosmtpd on 127.0.0.1, ephemeral port (printed as PORT n).

Recipients decide the answer: local part starting with "reject" gets 550 at RCPT, "echo" gets
550 quoting the envelope back (as many servers do), "defer" gets 451 at RCPT, "flaky" gets 451
the first time and 250 after. --data-fail N answers the first N
DATA commands with --data-code. Each accepted message is written to DIR as n.eml (bytes as
received, dot-unstuffed) and then n.json (envelope), so a reader waits for the .json.
"""
import argparse, asyncio, json, os, sys
from aiosmtpd.smtp import SMTP

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--no-8bitmime", action="store_true")
p.add_argument("--no-smtputf8", action="store_true")
p.add_argument("--data-fail", type=int, default=0)
p.add_argument("--data-code", default="451 4.3.0 try later")
args = p.parse_args()
os.makedirs(args.dir, exist_ok=True)


class Handler:
    def __init__(self):
        self.count = 0
        self.data_failures = 0
        self.seen_flaky = set()
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = []
        for r in responses:
            if args.no_8bitmime and "8BITMIME" in r:
                continue
            if args.no_smtputf8 and "SMTPUTF8" in r:
                continue
            out.append(r)
        if out:
            last = out[-1]
            out[-1] = "250 " + last[4:]
        return out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 no such user"
        if local.startswith("echo"):
            return "550 5.7.1 <%s> refused mail from <%s> (helo %s)" % (
                address, envelope.mail_from, session.host_name)
        if local.startswith("defer"):
            return "451 4.2.0 mailbox busy"
        if local.startswith("flaky") and address not in self.seen_flaky:
            self.seen_flaky.add(address)
            return "451 4.2.0 come back later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_failures < args.data_fail:
            self.data_failures += 1
            return args.data_code
        self.count += 1
        n = self.count
        base = os.path.join(args.dir, str(n))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "mail_options": envelope.mail_options, "helo": session.host_name}
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 queued as %d" % n


async def main():
    handler = Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, decode_data=False, enable_SMTPUTF8=not args.no_smtputf8,
                     hostname="sink.test", ident="sink"),
        host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
