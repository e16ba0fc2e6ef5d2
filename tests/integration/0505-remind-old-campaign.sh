#!/bin/sh
# A reminder campaign built by an older samail (before last_assessed was a
# date label, 6fe7aa5) keeps writing the last self-diagnosis as its first
# messages did (2024-12-16) when it is sent, or re-sent after a crash, by
# this one: the campaign's content freezes which form it uses
# ("last_assessed_label").  The old campaign is simulated by removing the
# key from the stored content, as 0030 does for rule_month.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
sam init >/dev/null 2>&1
N=--now=2025-12-16T01:00:00Z		# 10:00 in Japan
# ★★, self-diagnosis 2024-12-16: the re-assessment is due today.
sam $N subscriber add --email ja@example.jp --org 株式会社さくら --star 2 \
	--assessed 2024-12-16 >/dev/null
sam $N subscriber add --email en@example.jp --org "Example KK" --star 2 \
	--assessed 2024-12-16 --locale en >/dev/null
expect_exit 0 "remind build" -- sam $N remind build
check "  ... two reminders queued" -- test "$(count "state = 'queued'")" = 2
check "  ... the campaign keeps the form of last_assessed" -- test \
	"$(q "SELECT json_extract(content, '\$.last_assessed_label') FROM campaign")" = 1

# last LOCALE: the last self-diagnosis as the text part of LOCALE's mail says it.
last() {
	$PY - "$T/mail/new" "$1" <<'PY'
import email, email.policy, os, re, sys
for f in sorted(os.listdir(sys.argv[1])):
    m = email.message_from_binary_file(open(os.path.join(sys.argv[1], f), "rb"), policy=email.policy.default)
    want = "ja@" if sys.argv[2] == "ja" else "en@"
    if not m["to"].addresses[0].addr_spec.startswith(want):
        continue
    t = m.get_body(("plain",)).get_content()
    r = re.search(r"(?:前回の自社診断：|Your last self-assessment: )(.*)", t)
    print(r.group(1).strip() if r else "none")
PY
}
expect_exit 0 "send" -- sam $N send
check "  ... the last self-diagnosis as Japanese writes a date" -- test "$(last ja)" = "2024年12月16日"
check "  ... and as English does" -- test "$(last en)" = "16 December 2024"

# The same campaign as an older samail built it, its messages in flight at
# a crash: sent again, they say what they said the first time.
rm -f "$T"/mail/new/*
q "UPDATE campaign SET content = json_remove(content, '\$.last_assessed_label')"
q "UPDATE outbox SET state = 'inflight'"
expect_exit 0 "send again after an upgrade" -- sam $N send
check "  ... a campaign built before keeps 2024-12-16 (ja)" -- test "$(last ja)" = "2024-12-16"
check "  ... and (en)" -- test "$(last en)" = "2024-12-16"
finish
