# Shared helpers for integration tests (sourced).  Each test runs the real
# binary ($SAMAIL) in its own temporary directory with its own config.
set -u
: "${SAMAIL:?set SAMAIL to the samail binary}"
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
DATA=$SRCDIR/tests/data
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/samail-test.XXXXXX")
export T
# Every newsletter made from a skeleton is also rendered whole and the two
# compared (lib/newsletter.c): a difference fails the send.
export SAMAIL_CHECK_SKELETONS=1
ntest=0
nfail=0
cleanup_hooks=""
at_exit() { cleanup_hooks="$1; $cleanup_hooks"; }
trap 'eval "$cleanup_hooks"; if [ "${KEEP:-0}" = 1 ] || [ $nfail -gt 0 ]; then echo "# kept $T"; else rm -rf "$T"; fi' EXIT
cd "$T" || exit 1

# A config under $T; extra lines from stdin are appended.
write_config() {
	cat > "$T/samail.conf" <<CONF
[database]
path = $T/samail.db
[mail]
from = SECURITY ACTION 事務局 <news@example.jp>
transport = maildir:$T/mail
[feeds]
allow_local_files = yes
seed = $T/feeds.conf
CONF
	: > "$T/feeds.conf"	# no real feeds: tests name their own
	# The test's own settings replace the base's (samail refuses a key
	# set twice).
	[ -t 0 ] || { cat > "$T/samail.conf.own"; $PY - "$T/samail.conf" "$T/samail.conf.own" <<'PY'
import re, sys
base, own = (open(f, encoding="utf-8").read().splitlines() for f in sys.argv[1:3])
def keys(lines):
    sec, out = "", set()
    for l in lines:
        m = re.match(r"\s*\[([^]]+)\]", l)
        if m:
            sec = m.group(1).strip()
        elif "=" in l and not l.lstrip().startswith((";", "#")):
            out.add((sec, l.split("=", 1)[0].strip()))
    return out
mine, sec, kept = keys(own), "", []
for l in base:
    m = re.match(r"\s*\[([^]]+)\]", l)
    if m:
        sec = m.group(1).strip()
    elif "=" in l and (sec, l.split("=", 1)[0].strip()) in mine:
        continue
    kept.append(l)
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(kept + own) + "\n")
PY
	}
}

sam() { "$SAMAIL" -c "$T/samail.conf" "$@"; }

ok() { ntest=$((ntest + 1)); echo "ok $ntest - $*"; }
not_ok() { ntest=$((ntest + 1)); nfail=$((nfail + 1)); echo "not ok $ntest - $*"; }

# expect_exit CODE DESCRIPTION -- command...
expect_exit() {
	want=$1; desc=$2; shift 3
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" = "$want" ]; then ok "$desc (exit $got)"
	else not_ok "$desc: exit $got, want $want"; sed 's/^/#   /' "$T/err" "$T/out" | head -20; fi
}

# check DESCRIPTION -- test-command...
check() {
	desc=$1; shift 2
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# A stable digest of the whole database's content.
db_digest() { sqlite3 "$T/samail.db" .dump | sha256sum | cut -c1-64; }

# A query on the test's store, and the outbox rows matching a condition.
q() { sqlite3 "$T/samail.db" "$1"; }
count() { q "SELECT count(*) FROM outbox WHERE $1"; }

# Send through these relays ([mail] transport, space-separated URLs).
use_relays() { sed -i "s|^transport = .*|transport = $*|" "$T/samail.conf"; }

# A free TCP port on loopback.
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

finish() {
	echo "1..$ntest"
	[ $nfail -eq 0 ] || { echo "# $nfail failed"; exit 1; }
	exit 0
}

# start_server TOOL NAME [options]: tests/tools/TOOL.py on loopback,
# logging to $T/NAME.log, once it has written its port to its ready file;
# sets SERVER_PORT and SERVER_PID; stopped at exit.
start_server() {
	tool=$1 name=$2; shift 2
	rm -f "$T/$name.ready"
	$PY "$SRCDIR/tests/tools/$tool.py" --ready "$T/$name.ready" --log "$T/$name.log" "$@" \
		>"$T/$name.out" 2>&1 &
	SERVER_PID=$!
	at_exit "kill $SERVER_PID 2>/dev/null"
	i=0
	while [ ! -s "$T/$name.ready" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	[ -s "$T/$name.ready" ] || { echo "# $tool $name did not start"; cat "$T/$name.out"; exit 1; }
	SERVER_PORT=$(cat "$T/$name.ready")
}
# start_smtpd NAME [smtpd.py options]: the aiosmtpd server; sets
# SMTPD_PORT and SMTPD_PID_NAME.
start_smtpd() {
	start_server smtpd "$@"
	eval "SMTPD_PID_$1=$SERVER_PID"
	SMTPD_PORT=$SERVER_PORT
}
# start_relay NAME [relay.py rules and options]: the scripted relay that
# answers each step as told; sets RELAY_PORT.
start_relay() { start_server relay "$@"; RELAY_PORT=$SERVER_PORT; }
stop_smtpd() { eval "kill \$SMTPD_PID_$1"; eval "wait \$SMTPD_PID_$1" 2>/dev/null; }

# Messages the server logged: "RCPT MESSAGE-ID" per line.
smtpd_messages() {
	$PY - "$T/$1.log" <<'PY'
import base64, email, email.policy, json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    if r.get("event") != "msg":
        continue
    m = email.message_from_bytes(base64.b64decode(r["data_b64"]), policy=email.policy.default)
    print(r["rcpt_tos"][0], m["message-id"])
PY
}

# Insert advisories of October 2026 for tests that need a newsletter.
seed_advisories() {
	sqlite3 "$T/samail.db" <<'SQL'
INSERT INTO feed (name, url, alert, created) VALUES
 ('t-ipa', 'https://www.ipa.go.jp/security/alert-rss.rdf', 1, 'x'),
 ('t-jvn', 'https://jvn.jp/rss/jvn.rdf', 0, 'x');
INSERT INTO advisory (feed_id, guid, title, link, summary, published, cvss, severity, cves, products, hash, first_seen, last_seen)
 SELECT f.id, 'a1', 'Microsoft 製品の脆弱性対策について(2026年10月)', 'https://www.ipa.go.jp/security/security-alert/2026/1015-ms.html', '', '2026-10-15T01:00:00Z', NULL, NULL, '', 'office,windows', 'h', 'x', 'x' FROM feed f WHERE f.name = 't-ipa';
INSERT INTO advisory (feed_id, guid, title, link, summary, published, cvss, severity, cves, products, hash, first_seen, last_seen)
 SELECT f.id, 'j1', 'FortiOS における認証回避の脆弱性', 'https://jvn.jp/vu/JVNVU00000001/', '認証回避の脆弱性があります。', '2026-10-10T01:00:00Z', 9.8, 'Critical', 'CVE-2026-11111', 'fortios', 'h', 'x', 'x' FROM feed f WHERE f.name = 't-jvn';
SQL
}

# A second list beside the first: $T/other.conf, its own database and
# List-Id, the same key file ($T/unsubscribe.key, the first list's by
# default), a@example.jp (declarer id 1) with January 2026's newsletter
# built.  Its tokens differ from the first list's by the List-Id alone.
other_list() {
	cat > "$T/other.conf" <<CONF
[database]
path = $T/other.db
[mail]
from = Other list <other@example.jp>
list_id = <other-list.example.jp>
transport = maildir:$T/mail-other
[unsubscribe]
secret_file = $T/unsubscribe.key
CONF
	"$SAMAIL" -c "$T/other.conf" init >/dev/null 2>&1
	"$SAMAIL" -c "$T/other.conf" subscriber add --email a@example.jp --org A >/dev/null
	"$SAMAIL" -c "$T/other.conf" --now=2026-02-03T00:00:00Z newsletter build --period 2026-01 >/dev/null
}

# A fresh store with these declarers (WHO@example.jp), each with October's
# newsletter queued (built at $NOW, 2026-11-01 by default).
queue_newsletters() {
	rm -f "$T"/samail.db*
	sam init >/dev/null 2>&1
	seed_advisories
	for who in "$@"; do
		sam subscriber add --email "$who@example.jp" --org "株式会社$who" >/dev/null
	done
	sam --now "${NOW:-2026-11-01T00:00:00Z}" newsletter build --period 2026-10 >/dev/null 2>&1
}
