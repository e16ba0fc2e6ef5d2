"""Shared by the test servers (smtpd.py, relay.py): announce the port a
loopback server got in a ready file (written whole, then renamed, so a
test never reads half of it) and serve until SIGTERM or SIGINT."""
import os
import signal


def serve(loop, server, ready):
    port = server.sockets[0].getsockname()[1]
    tmp = ready + '.tmp'
    with open(tmp, 'w') as f:
        f.write('%d\n' % port)
    os.rename(tmp, ready)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0
