"""A next hop for the delivery tests: aiosmtpd on 127.0.0.1, ephemeral port (printed as PORT n).

Recipients decide the answer: local part starting with "reject" gets 550 at RCPT, "defer" gets
451 at RCPT, "flaky" gets 451 the first time and 250 after. --data-fail N answers the first N
DATA commands with --data-code. Each accepted message is written to DIR as n.eml (bytes as
received, dot-unstuffed) and then n.json (envelope), so a reader waits for the .json.
--tls-cert/--tls-key offer STARTTLS; --refuse-starttls offers it and answers 454. DIR/connections.json
counts connections: in all, and the most open at once.
"""
import argparse, asyncio, json, os, ssl, sys
from aiosmtpd.smtp import SMTP

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--no-8bitmime", action="store_true")
p.add_argument("--no-smtputf8", action="store_true")
p.add_argument("--data-fail", type=int, default=0)
p.add_argument("--data-code", default="451 4.3.0 try later")
p.add_argument("--tls-cert")
p.add_argument("--tls-key")
p.add_argument("--refuse-starttls", action="store_true")
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
        if args.refuse_starttls:
            out.append("250-STARTTLS")
        out = ["250-" + r[4:] for r in out]
        if out:
            out[-1] = "250 " + out[-1][4:]
        return out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 no such user"
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
                "mail_options": envelope.mail_options, "helo": session.host_name,
                "tls": session.ssl is not None}
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 queued as %d" % n


class Counted(SMTP):
    """Counts connections, for the tests of connection reuse and limits."""
    open_now = 0
    most = 0
    total = 0

    @classmethod
    def _write(cls):
        path = os.path.join(args.dir, "connections.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"total": cls.total, "max_concurrent": cls.most}, f)
        os.rename(path + ".tmp", path)

    def connection_made(self, transport):
        Counted.open_now += 1
        Counted.total += 1
        Counted.most = max(Counted.most, Counted.open_now)
        Counted._write()
        super().connection_made(transport)

    def connection_lost(self, exc):
        Counted.open_now -= 1
        super().connection_lost(exc)

    async def smtp_STARTTLS(self, arg):
        if args.refuse_starttls:
            await self.push("454 4.7.0 TLS not available due to temporary reason")
            return
        await super().smtp_STARTTLS(arg)


async def main():
    handler = Handler()
    loop = asyncio.get_running_loop()
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    server = await loop.create_server(
        lambda: Counted(handler, decode_data=False, enable_SMTPUTF8=not args.no_smtputf8,
                        hostname="sink.test", ident="sink", tls_context=context),
        host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
