#!/usr/bin/python3
"""Loopback SMTP server for samail's tests (Debian's python3-aiosmtpd).

Listens on 127.0.0.1 (port 0 = a free one), writes the port to --ready
once it accepts connections, and appends one JSON object per line to --log:

  {"event": "connect", "conn": N}
  {"event": "msg", "conn": N, "tls": bool, "auth": user|null,
   "helo": name, "mail_from": addr, "rcpt_tos": [addr...],
   "data_b64": base64 of the message as received (dot-unstuffed),
   "queue_id": id}

A message is logged before its 250 goes out, so a client that got the 250
finds it in the log.  SIGTERM stops the server.

What the server does for a recipient depends on its local part (the part
before '@', matched as a prefix):

  nouser      RCPT  550 5.1.1 ... User unknown
  bare550     RCPT  550 no such user (no enhanced status code)
  rcpt4xx     RCPT  450 4.7.1 ... greylisted
  rcpt5xx     RCPT  554 5.7.1 ... Relay access denied
  exim550     RCPT  550 relay not permitted (Exim's words, no enhanced code)
  refusedata  DATA  554 5.5.1 at the DATA command
  data4xx     end   451 4.3.0 at the end of data
  data5xx     end   554 5.7.1 at the end of data
  datanouser  end   550 5.1.1 at the end of data
  dropmid     drops the connection in the middle of the message data
  dropend     drops the connection after the data, before any reply
  stall       never answers the end of data
  slow        answers the end of data after half a second
  multiline   end   multi-line 250 reply with the queue id on its last line
  ugly        end   250 whose text has a tab, DEL and UTF-8 in it
  anything else: accepted, "250 2.0.0 Ok: queued as <ID>" like Postfix.

Listener options: --starttls / --smtps (with --cert/--key), --require-starttls,
--auth USER:PASS (AUTH required; --auth-mech PLAIN|LOGIN offers only that),
--stall-greeting (accept, never greet), --max-conns N (421 beyond N open
connections, like Postfix's anvil), --max-msgs N (421 and close at the
MAIL after N messages on one connection), --size-limit N (SIZE N in EHLO,
552 at MAIL for a bigger SIZE=).
"""

import argparse
import asyncio
import base64
import json
import secrets
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult

import loopserve


def local_part(addr):
    return addr.split('@', 1)[0].lower()


class Log:
    def __init__(self, path):
        self.f = open(path, 'a', encoding='utf-8') if path else None

    def write(self, rec):
        if self.f:
            self.f.write(json.dumps(rec) + '\n')
            self.f.flush()


class Handler:
    def __init__(self, log):
        self.log = log

    async def handle_RCPT(self, server, session, envelope, address, options):
        lp = local_part(address)
        if lp.startswith('nouser'):
            return ('550 5.1.1 <%s>: Recipient address rejected: '
                    'User unknown in virtual mailbox table' % address)
        if lp.startswith('bare550'):
            return '550 no such user here'
        if lp.startswith('rcpt4xx'):
            return ('450 4.7.1 <%s>: Recipient address rejected: '
                    'greylisted, try again later' % address)
        if lp.startswith('rcpt5xx'):
            return '554 5.7.1 <%s>: Relay access denied' % address
        if lp.startswith('exim550'):
            return '550 relay not permitted'
        envelope.rcpt_tos.append(address)
        return '250 2.1.5 Ok'

    async def handle_DATA(self, server, session, envelope):
        lps = [local_part(r) for r in envelope.rcpt_tos]

        def has(prefix):
            return any(lp.startswith(prefix) for lp in lps)

        if has('data4xx'):
            return '451 4.3.0 Error: queue file write error'
        if has('data5xx'):
            return '554 5.7.1 Message rejected: looks like spam'
        if has('datanouser'):
            return '550 5.1.1 <%s>: mailbox unavailable' % envelope.rcpt_tos[0]
        if has('dropend'):
            server.transport.abort()
            await asyncio.sleep(3600)
        if has('stall'):
            await asyncio.sleep(3600)
        if has('slow'):
            await asyncio.sleep(0.5)
        qid = secrets.token_hex(5).upper()
        ssl_obj = server.transport.get_extra_info('ssl_object')
        self.log.write({
            'event': 'msg',
            'conn': server.conn_id,
            'tls': ssl_obj is not None,
            'auth': (session.auth_data.login.decode()
                     if session.authenticated and session.auth_data else None),
            'helo': session.host_name,
            'mail_from': envelope.mail_from,
            'rcpt_tos': list(envelope.rcpt_tos),
            'data_b64': base64.b64encode(envelope.original_content).decode(),
            'queue_id': qid,
            't': time.time(),
        })
        if has('multiline'):
            return ('250-2.0.0 Ok: message accepted\r\n'
                    '250 2.0.0 queued as %s' % qid)
        if has('ugly'):
            return ('250 2.0.0 Ok:\ttab\x7fdel \u65e5\u672c queued as %s'
                    % qid)
        return '250 2.0.0 Ok: queued as %s' % qid


class TestSMTP(SMTP):
    """aiosmtpd's SMTP with the failures it cannot do through hooks."""

    def __init__(self, *a, conn_id=0, on_close=None, max_msgs=0, **kw):
        super().__init__(*a, **kw)
        self.conn_id = conn_id
        self.on_close = on_close
        self.max_msgs = max_msgs
        self.msgs = 0

    async def smtp_MAIL(self, arg):
        if self.max_msgs and self.msgs >= self.max_msgs:
            await self.push('421 4.7.0 localhost Error: too many messages '
                            'in this session')
            self.transport.close()
            return
        self.msgs += 1
        await super().smtp_MAIL(arg)

    def connection_lost(self, exc):
        if self.on_close:
            self.on_close()
            self.on_close = None
        super().connection_lost(exc)

    async def smtp_DATA(self, arg):
        lps = [local_part(r) for r in self.envelope.rcpt_tos]
        if self.envelope.rcpt_tos and not arg:
            if any(lp.startswith('refusedata') for lp in lps):
                await self.push('554 5.5.1 Error: no valid recipients')
                return
            if any(lp.startswith('dropmid') for lp in lps):
                await self.push('354 End data with <CR><LF>.<CR><LF>')
                await self._reader.read(64)
                self.transport.abort()
                await asyncio.sleep(3600)   # cancelled when the loss lands
                return
        await super().smtp_DATA(arg)


class Busy(asyncio.Protocol):
    def connection_made(self, transport):
        transport.write(b'421 4.7.0 localhost Error: too many connections '
                        b'from 127.0.0.1\r\n')
        transport.close()


class Mute(asyncio.Protocol):
    """Accepts and never says a word."""

    def connection_made(self, transport):
        self.transport = transport


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--ready', required=True)
    ap.add_argument('--log')
    ap.add_argument('--cert')
    ap.add_argument('--key')
    ap.add_argument('--starttls', action='store_true')
    ap.add_argument('--smtps', action='store_true')
    ap.add_argument('--require-starttls', action='store_true')
    ap.add_argument('--auth')
    ap.add_argument('--auth-mech', choices=['PLAIN', 'LOGIN'])
    ap.add_argument('--stall-greeting', action='store_true')
    ap.add_argument('--max-conns', type=int, default=0)
    ap.add_argument('--max-msgs', type=int, default=0)
    ap.add_argument('--size-limit', type=int, default=0)
    args = ap.parse_args()

    log = Log(args.log)
    handler = Handler(log)
    tls = None
    if args.starttls or args.smtps:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    authenticator = None
    exclude = []
    if args.auth:
        user, _, password = args.auth.partition(':')

        def authenticator(server, session, envelope, mechanism, data):
            ok = (data.login.decode() == user and
                  data.password.decode() == password)
            return AuthResult(success=ok, handled=False, auth_data=data)
        if args.auth_mech:
            exclude = [m for m in ('PLAIN', 'LOGIN') if m != args.auth_mech]

    state = {'open': 0, 'next': 0}

    def closed():
        state['open'] -= 1

    def factory():
        if args.stall_greeting:
            return Mute()
        if args.max_conns and state['open'] >= args.max_conns:
            return Busy()
        state['open'] += 1
        state['next'] += 1
        log.write({'event': 'connect', 'conn': state['next']})
        kw = {}
        if args.starttls:
            kw['tls_context'] = tls
            kw['require_starttls'] = args.require_starttls
        if authenticator:
            kw['authenticator'] = authenticator
            kw['auth_required'] = True
            # Over --smtps the whole connection is TLS, which aiosmtpd
            # does not notice (it only knows its own STARTTLS): it would
            # never offer AUTH.
            kw['auth_require_tls'] = not args.smtps
            kw['auth_exclude_mechanism'] = exclude
        return TestSMTP(handler, conn_id=state['next'], on_close=closed,
                        max_msgs=args.max_msgs,
                        hostname='localhost', ident='samail-test-smtpd',
                        data_size_limit=args.size_limit or None,
                        enable_SMTPUTF8=True,
                        timeout=60, **kw)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        factory, '127.0.0.1', args.port, ssl=tls if args.smtps else None,
        reuse_address=True))
    return loopserve.serve(loop, server, args.ready)


if __name__ == '__main__':
    sys.exit(main())
