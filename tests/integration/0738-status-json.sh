#!/bin/sh
# `samail status --json` is one valid JSON array in every state a morning
# can find: a fresh database, a run holding the lock (with an unreadable
# holder line), a run that died mid-step, one marked interrupted, a run
# refused for its clock, a newsletter missed, a feed failing, a relay
# refusing our content, addresses that left, reminders due; and the text
# form says the same states without failing.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || { echo "no $PY"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

write_config </dev/null
sam init >/dev/null 2>&1
valid() {	# state description: status --json parses, and text status exits 0
	sam --json --now "$NOW" status > s.json 2> s.err; rc=$?
	check "$1: status --json exits 0 and is one valid JSON array" -- eval \
		'[ $rc = 0 ] && $PY -m json.tool s.json >/dev/null && $PY -c "import json,sys; a=json.load(open(\"s.json\")); assert isinstance(a, list) and all(isinstance(r, dict) and \"type\" in r for r in a)"'
	sam --now "$NOW" status > s.txt 2>&1
	check "  ... and the text form exits 0" -- test $? = 0
}
types() { $PY -c 'import json; print(" ".join(sorted({r["type"] for r in json.load(open("s.json"))})))'; }

NOW=2026-10-20T00:00:00Z
valid "a fresh database"
sam feed add "http://127.0.0.1:$(free_port)/gone.rdf" --name gone >/dev/null
sam feed add "$SRCDIR/feeds/samples/jvn.rdf" --name jvn >/dev/null
sam subscriber add --email "a@example.jp" --org '株式会社"引用"\テスト' --products windows \
	--star 1 --declared 2025-10-25 >/dev/null
sam subscriber add --email "b@example.jp" --org 株式会社二 >/dev/null
sam -q --now 2026-10-19T21:30:00Z run daily >/dev/null 2>&1
sam -q --now 2026-10-21T21:30:00Z run daily >/dev/null 2>&1
NOW=2026-10-22T00:00:00Z
valid "after runs with a feed down"

# A run holding the lock, its holder line empty (not samail's writing).
$PY -c 'import fcntl, time; f = open("samail.db.lock", "a"); fcntl.flock(f, fcntl.LOCK_EX); open("locked", "w").close(); time.sleep(30)' &
holder=$!
at_exit "kill $holder 2>/dev/null"
# (until it holds the lock: a fixed sleep lost the race under load)
i=0
until [ -e locked ] || [ $i -ge 200 ]; do sleep 0.05; i=$((i + 1)); done
valid "a lock held, holder unknown"
check "  ... with a lock record" -- eval 'types | grep -q "lock"'
kill $holder; wait $holder 2>/dev/null

# A run that died mid-step (kill -9 leaves its row unfinished).
sqlite3 samail.db "INSERT INTO run (kind, started) VALUES ('monthly', '2026-11-01T00:00:00Z')"
NOW=2026-11-01T00:05:00Z
valid "a monthly run that died"
check "  ... shown as died" -- grep -q '"state": "died"' s.json
sam -q --now 2026-11-01T01:00:00Z run monthly >/dev/null 2>&1
NOW=2026-11-01T02:00:00Z
valid "after the next run marked it interrupted"

# A relay refusing our content; a bounced address; a summary with quotes,
# backslashes, control characters and broken UTF-8.
sqlite3 samail.db "INSERT INTO meta (key, value) VALUES ('$(sed -n 's/.*SENDER_META_REFUSED[[:space:]]*"\([^"]*\)".*/\1/p' "$SRCDIR/lib/sender.h")', '554 5.7.1 \"spam\" \\ rejected')
	ON CONFLICT (key) DO UPDATE SET value = excluded.value"
sqlite3 samail.db "UPDATE subscriber SET status = 'bounced', status_changed = '2026-11-01T01:30:00Z', status_reason = '550 5.1.1 \"no\" such user '||CAST(X'FF' AS TEXT) WHERE email = 'b@example.jp'"
sqlite3 samail.db "UPDATE run SET summary = 'fetch: '||char(9)||'tab \"q\" \\ '||char(1)||CAST(X'E383' AS TEXT)||' end' WHERE id = (SELECT max(id) FROM run)"
valid "content refused, a bounce, an odd summary"
# Bytes that are not UTF-8 (a relay's or a DSN's words) become U+FFFD:
# the record keeps its key and its line.
check "  ... the bounce's reason kept, a bad byte as U+FFFD" -- $PY -c '
import json
a = json.load(open("s.json"))
r = [x for x in a if x["type"] == "address"]
assert r and r[0]["reason"] == "550 5.1.1 \"no\" such user \ufffd", r
m = [x for x in a if x["type"] == "run" and x["kind"] == "monthly"][0]
assert m["summary"] == ["fetch: \ttab \"q\" \\ \x01\ufffd\ufffd end"], m["summary"]'

# A newsletter missed (the machine off from Nov 2 to Jan 2), a feed
# failing for weeks.
NOW=2027-01-03T00:00:00Z
sam -q --now 2027-01-02T21:30:00Z run daily >/dev/null 2>&1
valid "a missed newsletter"
check "  ... listed, with the failing feed" -- eval 'types | grep -q "feed newsletter_missed run"'
# A run refused for its clock (the last one's two days ahead).
ahead=$($PY -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) + d.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
sqlite3 samail.db "INSERT INTO meta (key, value) VALUES ('run clock', '$ahead') ON CONFLICT (key) DO UPDATE SET value = excluded.value"
sam -q run daily >/dev/null 2>&1
NOW=$ahead
valid "a run refused for its clock"
finish
