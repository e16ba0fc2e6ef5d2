# Shared helpers for integration tests (sourced).  Each test runs the real
# binary ($SAMAIL) in its own temporary directory with its own config.
set -u
: "${SAMAIL:?set SAMAIL to the samail binary}"
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
DATA=$SRCDIR/tests/data
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/samail-test.XXXXXX")
export T
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
CONF
	[ -t 0 ] || cat >> "$T/samail.conf"
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

# A free TCP port on loopback.
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

finish() {
	echo "1..$ntest"
	[ $nfail -eq 0 ] || { echo "# $nfail failed"; exit 1; }
	exit 0
}
