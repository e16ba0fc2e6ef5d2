#!/bin/sh
# Screenshot an HTML file in headless Chromium at phone and desktop widths.
#
#   screenshot.sh FILE.html OUTDIR [NAME]
#
# Writes OUTDIR/NAME-375.png and OUTDIR/NAME-1024.png (NAME defaults to the
# file's base name), each cropped to the page's height.  The page is loaded
# from file:// with every host name unresolvable, so a remote resource that
# slipped in shows up missing instead of being fetched.  Environment:
#   CHROMIUM   browser binary (default /usr/bin/chromium; Debian: apt-get
#              install chromium; Japanese needs fonts-noto-cjk)
#   SHOT_HEIGHT  tallest page captured, in px (default 6000)
#   SHOT_WIDTHS  widths to capture (default "375 1024")
# Exit: 0 done, 64 usage, 66 input missing, 69 no browser, 70 browser failed.
set -u

usage() { echo "usage: screenshot.sh FILE.html OUTDIR [NAME]" >&2; exit 64; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage
in=$1 outdir=$2
name=${3:-$(basename "$in" .html)}
browser=${CHROMIUM:-/usr/bin/chromium}
height=${SHOT_HEIGHT:-6000}
widths=${SHOT_WIDTHS:-375 1024}
py=/usr/bin/python3

[ -f "$in" ] || { echo "screenshot.sh: '$in': no such file" >&2; exit 66; }
[ -x "$browser" ] || {
	echo "screenshot.sh: '$browser' not found; install it (apt-get install -y chromium)" >&2
	exit 69
}
if ! fc-list :lang=ja 2>/dev/null | grep -q .; then
	echo "screenshot.sh: warning: no Japanese font; Japanese shows as boxes" \
	    "(apt-get install -y fonts-noto-cjk)" >&2
fi
mkdir -p "$outdir" || exit 73
abs=$(cd "$(dirname "$in")" && pwd)/$(basename "$in")
profile=$(mktemp -d "${TMPDIR:-/tmp}/shot-profile.XXXXXX") || exit 73
trap 'rm -rf "$profile"' EXIT

status=0
for w in $widths; do
	png=$outdir/$name-$w.png
	rm -f "$png"
	# --host-resolver-rules: nothing leaves the machine, whatever the page
	# refers to.  --hide-scrollbars: the scrollbar would eat into 375 px.
	"$browser" --headless --no-sandbox --disable-gpu --disable-quic \
	    --no-first-run --disable-background-networking \
	    --disable-component-update --disable-sync \
	    --host-resolver-rules='MAP * ~NOTFOUND' \
	    --hide-scrollbars --force-device-scale-factor=1 \
	    --user-data-dir="$profile" \
	    --window-size="$w,$height" --screenshot="$png" \
	    "file://$abs" >"$profile/log" 2>&1
	if [ ! -s "$png" ]; then
		echo "screenshot.sh: chromium made no screenshot of '$in' at ${w}px:" >&2
		tail -5 "$profile/log" >&2
		status=70
		continue
	fi
	# Crop the empty space below the page.  A row stored with PNG filter 2
	# ("Up") and all-zero bytes repeats the row above, so the trailing run
	# of such rows is blank page; cutting the filtered stream there needs
	# no decoding (rows depend only on the rows above them).
	"$py" - "$png" <<'PY' || status=70
import struct, sys, zlib

path = sys.argv[1]
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, chunks = 8, []
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    chunks.append((kind, data[pos + 8:pos + 8 + n]))
    pos += 12 + n
ihdr = dict(chunks)[b"IHDR"]
w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", ihdr)
channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
if depth != 8 or channels is None or interlace:
    sys.exit(0)                      # leave unusual PNGs alone
stride = w * channels + 1
raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
zero = bytes(stride - 1)
y = h - 1
while y > 0 and raw[y * stride] == 2 and raw[y * stride + 1:(y + 1) * stride] == zero:
    y -= 1
keep = min(h, y + 1 + 24)
if keep == h:
    sys.exit(0)

def chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + \
        struct.pack(">I", zlib.crc32(kind + payload) & 0xffffffff)

out = b"\x89PNG\r\n\x1a\n" \
    + chunk(b"IHDR", struct.pack(">IIBBBBB", w, keep, depth, ctype, comp, filt, 0)) \
    + chunk(b"IDAT", zlib.compress(raw[:keep * stride], 6)) + chunk(b"IEND", b"")
open(path, "wb").write(out)
PY
	echo "$png"
done
exit $status
