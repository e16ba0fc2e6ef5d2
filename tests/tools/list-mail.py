#!/usr/bin/python3
"""List the messages in a maildir (or single .eml files): recipient,
subject (decoded), attachments.  For `make demo` and for looking at what
samail wrote with the maildir: transport.

    list-mail.py MAILDIR|FILE...
"""
import email
import email.policy
import os
import signal
import sys


def files(args):
    for a in args:
        if os.path.isdir(a):
            for sub in ("new", "cur"):
                d = os.path.join(a, sub)
                if os.path.isdir(d):
                    for n in sorted(os.listdir(d)):
                        yield os.path.join(d, n)
        else:
            yield a


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # | head is fine
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    n = 0
    for path in files(sys.argv[1:]):
        with open(path, "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        att = [p.get_filename() for p in m.iter_attachments() if p.get_filename()]
        print("%-30s %s%s" % (m["To"].addresses[0].addr_spec if m["To"] else "?",
                              m["Subject"],
                              "  [" + ", ".join(att) + "]" if att else ""))
        n += 1
    print("(%d message%s)" % (n, "" if n == 1 else "s"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
