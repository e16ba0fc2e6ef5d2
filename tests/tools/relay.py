#!/usr/bin/python3
"""A scripted SMTP relay for samail's tests: raw asyncio, no aiosmtpd, so it
can say what real relays say and aiosmtpd will not (a 554 or 421
greeting, EHLO refused, no ESMTP extensions, any reply text at the end of
data, a connection dropped after the final dot).

  relay.py --ready FILE --log FILE [options] [RULE...]

A RULE is PREFIX:STEP=REPLY: when a recipient's local part starts with
PREFIX, the relay answers STEP with REPLY instead of accepting.  STEP is
one of
  mail    the MAIL FROM command
  rcpt    the RCPT TO command
  data    the DATA command
  end     the end of data (after the final dot)
REPLY is the reply text; "|" separates the lines of a multi-line reply
("250-first|250 last").  Two REPLY words are not replies:
  drop    close the connection without a reply
  stall   never reply (the connection stays open)
Rules with PREFIX "*" apply to every recipient; the first match wins.
At "mail" the recipient is not known yet: only "*" rules apply there.

Options:
  --greeting REPLY     the banner (default "220 relay.test ESMTP"); a
                       4xx/5xx banner answers every command but QUIT
                       with 503, as RFC 5321 says
  --ehlo REPLY         the reply to EHLO (default: 250 with --ext);
                       HELO always works
  --ext LIST           ESMTP extensions, comma-separated (default
                       "PIPELINING,8BITMIME,ENHANCEDSTATUSCODES")
  --max-msgs N         "421 4.7.0 Too many messages" at the MAIL after N
                       messages on one connection, then close
  --ok REPLY           the 250 at the end of data ("{id}" is replaced by
                       a fresh queue id); default Postfix's

The log (--log) gets one JSON object per line: {"event": "connect",
"conn": N}, {"event": "cmd", "conn": N, "line": "..."} and {"event":
"msg", "conn": N, "rcpt": addr, "message_id": id, "queue_id": id,
"size": n} when a message is accepted (logged before the 250 goes out).
"""

import argparse
import asyncio
import email.parser
import email.policy
import json
import secrets
import sys

import loopserve


def local_part(addr):
    return addr.strip().strip('<>').split('@', 1)[0].lower()


class Relay:
    def __init__(self, args):
        self.a = args
        self.rules = []
        for r in args.rules:
            prefix, _, rest = r.partition(':')
            step, _, reply = rest.partition('=')
            if step not in ('mail', 'rcpt', 'data', 'end') or not reply:
                sys.exit('bad rule %r' % r)
            self.rules.append((prefix.lower(), step, reply))
        self.log = open(args.log, 'a', encoding='utf-8') if args.log else None
        self.nconn = 0

    def write(self, rec):
        if self.log:
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
            writer.write(('\r\n'.join(reply.split('|')) + '\r\n').encode())
            await writer.drain()
            return True

        try:
            if not await say(self.a.greeting):
                return
            refused = self.a.greeting[0] != '2'
            mail_from, rcpts, msgs = None, [], 0
            while True:
                line = await reader.readline()
                if not line:
                    return
                cmd = line.decode('utf-8', 'replace').rstrip('\r\n')
                self.write({'event': 'cmd', 'conn': conn, 'line': cmd})
                verb = cmd.split(' ', 1)[0].upper()
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
                    ext = [e for e in self.a.ext.split(',') if e]
                    lines = ['250-relay.test'] + ['250-' + e for e in ext]
                    lines[-1] = '250 ' + lines[-1][4:]
                    await say('|'.join(lines))
                elif verb == 'HELO':
                    await say('250 relay.test')
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
                            self.log_msg(conn, rcpts, data, 'ambiguous'
                                         if r in ('drop', 'stall') else
                                         'accepted')
                        if not await say(r):
                            return
                        mail_from, rcpts = None, []
                        continue
                    qid = secrets.token_hex(5).upper()
                    self.log_msg(conn, rcpts, data, 'accepted', qid)
                    await say(self.a.ok.replace('{id}', qid))
                    mail_from, rcpts = None, []
                else:
                    await say('502 5.5.2 Error: command not recognized')
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def log_msg(self, conn, rcpts, data, how, qid=None):
        m = email.parser.BytesHeaderParser(policy=email.policy.compat32) \
            .parsebytes(bytes(data))
        self.write({'event': 'msg', 'conn': conn, 'how': how,
                    'rcpt': rcpts[0].strip('<>'),
                    'message_id': (m['message-id'] or '').strip(),
                    'queue_id': qid, 'size': len(data)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ready', required=True)
    ap.add_argument('--log')
    ap.add_argument('--greeting', default='220 relay.test ESMTP')
    ap.add_argument('--ehlo')
    ap.add_argument('--ext', default='PIPELINING,8BITMIME,ENHANCEDSTATUSCODES')
    ap.add_argument('--max-msgs', type=int, default=0)
    ap.add_argument('--ok', default='250 2.0.0 Ok: queued as {id}')
    ap.add_argument('rules', nargs='*')
    args = ap.parse_args()
    relay = Relay(args)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(asyncio.start_server(
        relay.session, '127.0.0.1', 0, reuse_address=True))
    return loopserve.serve(loop, server, args.ready)


if __name__ == '__main__':
    sys.exit(main())
