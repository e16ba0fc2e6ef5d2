#!/usr/bin/python3
"""A scripted SMTP relay for samail's tests: raw asyncio, no aiosmtpd, so it
can say what real relays say and aiosmtpd will not (a 554 or 421
greeting, EHLO refused, no ESMTP extensions, any reply text at the end of
data, a connection dropped after the final dot, STARTTLS refused or cut
off in the handshake, old TLS versions, AUTH mechanisms nobody can use).

  relay.py --ready FILE --log FILE [options] [RULE...]

A RULE is PREFIX:STEP=REPLY: when a recipient's local part starts with
PREFIX, the relay answers STEP with REPLY instead of accepting.  STEP is
one of
  mail    the MAIL FROM command
  rcpt    the RCPT TO command
  data    the DATA command
  end     the end of data (after the final dot)
  starttls  the STARTTLS command
  tls     the TLS handshake after our 220 to STARTTLS (only "drop":
          read the ClientHello, then close; or "stall")
  auth    the end of the AUTH exchange, instead of checking --auth
REPLY is the reply text; "|" separates the lines of a multi-line reply
("250-first|250 last").  Two REPLY words are not replies:
  drop    close the connection without a reply
  stall   never reply (the connection stays open)
A last line "close" closes the connection after the reply (--ok "250
2.0.0 Ok: queued as {id}|close": a relay that hangs up after each
message it takes).
Rules with PREFIX "*" apply to every recipient; the first match wins.
At "mail", "starttls", "tls" and "auth" the recipient is not known yet:
only "*" rules apply there.

Options:
  --greeting REPLY     the banner (default "220 relay.test ESMTP"); a
                       4xx/5xx banner answers every command but QUIT
                       with 503, as RFC 5321 says
  --delay S            wait S seconds before the greeting (or "drop")
  --ehlo REPLY         the reply to EHLO (default: 250 with --ext);
                       HELO always works
  --ext LIST           ESMTP extensions, comma-separated (default
                       "PIPELINING,8BITMIME,ENHANCEDSTATUSCODES")
  --max-conns N        a "421 4.7.0 ... too many connections" greeting,
                       then close, to a connection while N are open
  --max-msgs N         "421 4.7.0 Too many messages" at the MAIL after N
                       messages on one connection, then close
  --ok REPLY           the 250 at the end of data ("{id}" is replaced by
                       a fresh queue id); default Postfix's
  --cert F --key F     the certificate for STARTTLS (offered when
                       STARTTLS is in --ext)
  --tls-ext LIST       the extensions after STARTTLS (default: --ext
                       without STARTTLS); e.g. "AUTH PLAIN LOGIN"
  --tls-wrap           TLS from the first byte (smtps, port 465), with
                       --cert/--key; no STARTTLS
  --listen ADDR        the address to listen on (default 127.0.0.1; "::1"
                       for IPv6)
  --tls-min V, --tls-max V
                       TLS versions the relay accepts: TLSv1, TLSv1_1,
                       TLSv1_2, TLSv1_3 (an old relay: --tls-max TLSv1_1)
  --auth USER:PASS     what AUTH PLAIN and LOGIN accept (235); anything
                       else gets 535 5.7.8, other mechanisms 504 5.5.4.
                       Offered only as --ext/--tls-ext say (AUTH ...).
                       Without it, AUTH gets 503 5.5.1

The log (--log) gets one JSON object per line: {"event": "connect",
"conn": N}, {"event": "cmd", "conn": N, "line": "..."} and {"event":
"msg", "conn": N, "rcpt": addr, "message_id": id, "queue_id": id,
"size": n, "tls": version|null, "auth": user|null} when a message is
accepted (logged before the 250 goes out); {"event": "tls", "conn": N,
"version": "TLSv1.3"} or {"event": "tls-error", "conn": N, "error":
"..."} after a handshake; {"event": "auth", "conn": N, "mech": "PLAIN",
"user": user, "ok": bool} (never the password: AUTH lines are logged as
"AUTH MECH" only, their continuations not at all).  Each has "t", the
time it was written (seconds since the epoch), to order the logs of
two relays.
"""

import argparse
import asyncio
import asyncio.sslproto
import base64
import binascii
import email.parser
import email.policy
import json
import secrets
import ssl
import sys
import time

import loopserve


# asyncio (3.11) throws away what OpenSSL wrote when a server-side
# handshake fails: the alert that tells the client why ("protocol
# version", "handshake failure").  A real relay's TLS stack sends it, and
# the client's error message depends on it: send it first.
_handshake_complete = asyncio.sslproto.SSLProtocol._on_handshake_complete


def _send_alert_first(self, exc):
    if exc is not None:
        try:
            self._process_outgoing()
        except Exception:
            pass
    return _handshake_complete(self, exc)


asyncio.sslproto.SSLProtocol._on_handshake_complete = _send_alert_first


def local_part(addr):
    return addr.strip().strip('<>').split('@', 1)[0].lower()


class Relay:
    def __init__(self, args):
        self.a = args
        self.rules = []
        for r in args.rules:
            prefix, _, rest = r.partition(':')
            step, _, reply = rest.partition('=')
            if step not in ('mail', 'rcpt', 'data', 'end', 'starttls',
                            'tls', 'auth') or not reply:
                sys.exit('bad rule %r' % r)
            self.rules.append((prefix.lower(), step, reply))
        self.log = open(args.log, 'a', encoding='utf-8') if args.log else None
        self.nconn = 0
        self.live = 0
        self.tls = None
        if args.cert:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.load_cert_chain(args.cert, args.key)
            versions = {v: getattr(ssl.TLSVersion, v) for v in
                        ('TLSv1', 'TLSv1_1', 'TLSv1_2', 'TLSv1_3')}
            if args.tls_min or args.tls_max:
                # An old relay: OpenSSL 3 refuses TLS 1.0/1.1 below
                # security level 0, whatever the versions say.
                self.tls.set_ciphers('DEFAULT:@SECLEVEL=0')
            if args.tls_min:
                self.tls.minimum_version = versions[args.tls_min]
            if args.tls_max:
                self.tls.maximum_version = versions[args.tls_max]
        self.ext = [e for e in args.ext.split(',') if e]
        self.tls_ext = ([e for e in args.tls_ext.split(',') if e]
                        if args.tls_ext is not None else
                        [e for e in self.ext if e.upper() != 'STARTTLS'])

    def write(self, rec):
        if self.log:
            rec['t'] = time.time()
            self.log.write(json.dumps(rec) + '\n')
            self.log.flush()

    def rule(self, step, rcpts):
        for prefix, st, reply in self.rules:
            if st != step:
                continue
            if prefix == '*' or any(local_part(r).startswith(prefix)
                                    for r in rcpts):
                return reply
        return None

    async def session(self, reader, writer):
        self.nconn += 1
        conn = self.nconn
        self.write({'event': 'connect', 'conn': conn})

        async def say(reply):
            """Send REPLY; False if the session ends here."""
            if reply == 'drop':
                writer.transport.abort()
                return False
            if reply == 'stall':
                await asyncio.sleep(3600)
                return False
            lines = reply.split('|')
            close = lines[-1] == 'close'
            if close:
                lines.pop()
            writer.write(('\r\n'.join(lines) + '\r\n').encode())
            await writer.drain()
            if close:
                writer.close()
                return False
            return True

        self.live += 1
        try:
            if self.a.delay:
                await asyncio.sleep(self.a.delay)
            greeting = self.a.greeting
            if self.a.max_conns and self.live > self.a.max_conns:
                # Postfix's anvil (smtpd_client_connection_count_limit).
                greeting = ('421 4.7.0 relay.test Error: too many '
                            'connections from 127.0.0.1|close')
            if not await say(greeting):
                return
            refused = self.a.greeting[0] != '2'
            mail_from, rcpts, msgs = None, [], 0
            st = {'tls': None, 'user': None}   # this session's
            if self.a.tls_wrap:
                st['tls'] = writer.get_extra_info('ssl_object').version()
            while True:
                line = await reader.readline()
                if not line:
                    return
                cmd = line.decode('utf-8', 'replace').rstrip('\r\n')
                verb = cmd.split(' ', 1)[0].upper()
                self.write({'event': 'cmd', 'conn': conn, 'line':
                            ' '.join(cmd.split(' ')[:2]) if verb == 'AUTH'
                            else cmd})
                if verb == 'QUIT':
                    await say('221 2.0.0 Bye')
                    writer.close()
                    return
                if refused:
                    await say('503 5.5.1 Error: no service here')
                    continue
                if verb == 'EHLO':
                    if self.a.ehlo:
                        await say(self.a.ehlo)
                        continue
                    ext = self.tls_ext if st['tls'] else self.ext
                    lines = ['250-relay.test'] + ['250-' + e for e in ext]
                    lines[-1] = '250 ' + lines[-1][4:]
                    await say('|'.join(lines))
                elif verb == 'HELO':
                    await say('250 relay.test')
                elif verb == 'STARTTLS':
                    if self.tls is None or st['tls'] or \
                            'STARTTLS' not in [e.upper() for e in self.ext]:
                        await say('502 5.5.1 Error: command not implemented')
                        continue
                    r = self.rule('starttls', ['*'])
                    if r is not None:
                        if not await say(r):
                            return
                        continue
                    if not await say('220 2.0.0 Ready to start TLS'):
                        return
                    r = self.rule('tls', ['*'])
                    if r == 'drop':
                        # Half a handshake: the ClientHello read, the
                        # connection gone.
                        await reader.read(64)
                        writer.transport.abort()
                        self.write({'event': 'tls-error', 'conn': conn,
                                    'error': 'dropped by rule'})
                        return
                    if r is not None and not await say(r):
                        return
                    try:
                        await writer.start_tls(self.tls)
                    except (ssl.SSLError, OSError) as ex:
                        self.write({'event': 'tls-error', 'conn': conn,
                                    'error': str(ex)})
                        writer.transport.abort()
                        return
                    st['tls'] = writer.get_extra_info('ssl_object').version()
                    self.write({'event': 'tls', 'conn': conn,
                                'version': st['tls']})
                    mail_from, rcpts = None, []
                elif verb == 'AUTH':
                    if not await self.auth(conn, st, cmd, reader, say):
                        return
                elif verb == 'MAIL':
                    if self.a.max_msgs and msgs >= self.a.max_msgs:
                        await say('421 4.7.0 relay.test Error: too many '
                                  'messages on this connection')
                        writer.close()
                        return
                    r = self.rule('mail', ['*'])
                    if r is not None:
                        if not await say(r):
                            return
                        continue
                    mail_from, rcpts = cmd[10:], []
                    await say('250 2.1.0 Ok')
                elif verb == 'RCPT':
                    addr = cmd.split(':', 1)[1].strip()
                    r = self.rule('rcpt', [addr])
                    if r is not None:
                        if not await say(r):
                            return
                        continue
                    rcpts.append(addr)
                    await say('250 2.1.5 Ok')
                elif verb == 'RSET':
                    mail_from, rcpts = None, []
                    await say('250 2.0.0 Ok')
                elif verb == 'NOOP':
                    await say('250 2.0.0 Ok')
                elif verb == 'DATA':
                    if not rcpts:
                        await say('554 5.5.1 Error: no valid recipients')
                        continue
                    r = self.rule('data', rcpts)
                    if r is not None:
                        if not await say(r):
                            return
                        continue
                    await say('354 End data with <CR><LF>.<CR><LF>')
                    data = bytearray()
                    while True:
                        l = await reader.readline()
                        if not l:
                            return
                        if l == b'.\r\n':
                            break
                        data += l[1:] if l.startswith(b'.') else l
                    msgs += 1
                    r = self.rule('end', rcpts)
                    if r is not None:
                        if r == 'drop' or r == 'stall' or r[0] == '2':
                            # Taken (maybe) before the answer is lost:
                            # what a relay that crashed after queueing
                            # did.
                            self.log_msg(conn, st, rcpts, data, 'ambiguous'
                                         if r in ('drop', 'stall') else
                                         'accepted')
                        if not await say(r):
                            return
                        mail_from, rcpts = None, []
                        continue
                    qid = secrets.token_hex(5).upper()
                    self.log_msg(conn, st, rcpts, data, 'accepted', qid)
                    await say(self.a.ok.replace('{id}', qid))
                    mail_from, rcpts = None, []
                else:
                    await say('502 5.5.2 Error: command not recognized')
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self.live -= 1
            try:
                writer.close()
            except Exception:
                pass

    async def auth(self, conn, st, cmd, reader, say):
        """The AUTH exchange (PLAIN, LOGIN); False if the session ends."""
        words = cmd.split(' ')
        mech = words[1].upper() if len(words) > 1 else ''
        if not self.a.auth and self.rule('auth', ['*']) is None:
            return await say('503 5.5.1 Error: authentication not enabled')
        if mech not in ('PLAIN', 'LOGIN'):
            return await say('504 5.5.4 Unrecognized authentication type')

        async def ask(prompt):
            if not await say('334 ' + prompt):
                return None
            line = await reader.readline()
            return line.decode('ascii', 'replace').strip() if line else None

        def b64(s):
            try:
                return base64.b64decode(s, validate=True).decode(
                    'utf-8', 'replace')
            except (binascii.Error, ValueError):
                return None
        user = password = None
        if mech == 'PLAIN':
            ir = words[2] if len(words) > 2 else await ask('')
            if ir is None:
                return False
            parts = (b64(ir) or '').split('\0')
            if len(parts) == 3:
                user, password = parts[1], parts[2]
        else:
            u = words[2] if len(words) > 2 else \
                await ask(base64.b64encode(b'Username:').decode())
            if u is None:
                return False
            p = await ask(base64.b64encode(b'Password:').decode())
            if p is None:
                return False
            user, password = b64(u), b64(p)
        r = self.rule('auth', ['*'])
        if r is None:
            want_user, _, want_pass = self.a.auth.partition(':')
            ok = user == want_user and password == want_pass
            r = ('235 2.7.0 Authentication successful' if ok else
                 '535 5.7.8 Error: authentication failed')
        ok = r[0] == '2'
        self.write({'event': 'auth', 'conn': conn, 'mech': mech,
                    'user': user, 'ok': ok})
        if ok:
            st['user'] = user
        return await say(r)

    def log_msg(self, conn, st, rcpts, data, how, qid=None):
        m = email.parser.BytesHeaderParser(policy=email.policy.compat32) \
            .parsebytes(bytes(data))
        self.write({'event': 'msg', 'conn': conn, 'how': how,
                    'rcpt': rcpts[0].strip('<>'),
                    'message_id': (m['message-id'] or '').strip(),
                    'queue_id': qid, 'size': len(data),
                    'tls': st['tls'], 'auth': st['user']})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ready', required=True)
    ap.add_argument('--log')
    ap.add_argument('--greeting', default='220 relay.test ESMTP')
    ap.add_argument('--ehlo')
    ap.add_argument('--delay', type=float, default=0)
    ap.add_argument('--ext', default='PIPELINING,8BITMIME,ENHANCEDSTATUSCODES')
    ap.add_argument('--max-msgs', type=int, default=0)
    ap.add_argument('--max-conns', type=int, default=0)
    ap.add_argument('--ok', default='250 2.0.0 Ok: queued as {id}')
    ap.add_argument('--cert')
    ap.add_argument('--key')
    ap.add_argument('--tls-ext')
    ap.add_argument('--tls-wrap', action='store_true')
    ap.add_argument('--listen', default='127.0.0.1')
    ap.add_argument('--tls-min')
    ap.add_argument('--tls-max')
    ap.add_argument('--auth')
    ap.add_argument('rules', nargs='*')
    args = ap.parse_args()
    relay = Relay(args)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(asyncio.start_server(
        relay.session, args.listen, 0, reuse_address=True,
        ssl=relay.tls if args.tls_wrap else None))
    return loopserve.serve(loop, server, args.ready)


if __name__ == '__main__':
    sys.exit(main())
