#!/usr/bin/python3
# The defaults samail.conf(5) states against those lib/config.c sets in
# config_defaults(): every key with a literal default (a number, a
# duration, a size, yes/no, a string) must say the same value.
# Usage: man-defaults.py lib/config.c docs/samail.conf.5
import re, sys
src, man = sys.argv[1], sys.argv[2]
code = open(src, encoding="utf-8").read()
keys = {}
for sec, key, typ, field in re.findall(r'\{ "(\w+)", "(\w+)", K_(\w+), O\((\w+)\)', code):
    keys[field] = (sec, key, typ)
body = code[code.index("config_defaults(void)"):]
body = body[:body.index("\n}\n")]
defaults = {}
for field, val in re.findall(r'c->(\w+) = (.+?);\n', body):
    m = re.fullmatch(r'xstrdup\("(.*)"\)', val)
    if m:
        defaults[field] = m.group(1)
    elif re.fullmatch(r'[0-9L *]+', val):
        defaults[field] = eval(val.replace("L", ""))
def unroff(s):
    s = re.sub(r'\\\[u([0-9A-F]{4,5})\]', lambda m: chr(int(m.group(1), 16)), s)
    s = re.sub(r'\\f[BIRP]', '', s).replace('\\-', '-').replace('\\&', '')
    s = re.sub(r'^\.(BR|B|IR|I|IB|BI|RB|RI)\s+', '', s, flags=re.M)
    return s.replace('"', '')
text, sec, entries, cur = open(man, encoding="utf-8").read(), None, {}, None
for line in text.splitlines():
    m = re.match(r'\.SS \[(\w+)\]', line)
    if m:
        sec, cur = m.group(1), None; continue
    if line.startswith(('.SH', '.SS')):
        sec, cur = None, None; continue
    if line.startswith('.TP'):
        cur = None; continue
    m = re.match(r'\\fB(\w+)\\fR = ', line)
    if m and sec:
        cur = (sec, m.group(1)); entries[cur] = ""; continue
    if cur:
        entries[cur] += unroff(line) + "\n"
def num(s, typ):
    m = re.fullmatch(r'(\d+)([smhdKMG]?)', s)
    if not m: return None
    mult = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "K": 1024, "M": 1 << 20, "G": 1 << 30}[m.group(2)]
    return int(m.group(1)) * mult
bad, n = [], 0
for field, want in defaults.items():
    if field not in keys: continue
    sec, key, typ = keys[field]
    e = entries.get((sec, key))
    if e is None: continue
    if typ == "SPECIAL" and not isinstance(want, str): continue
    flat = " ".join(e.split())
    got = None
    if "Default:" in flat:
        rest = flat.split("Default:", 1)[1].strip()
        got = re.split(r'\s*[;,](?:\s|$)|\s*\.(?:\s|$)', rest)[0]
    if got is None: bad.append(f"[{sec}] {key}: no Default"); continue
    n += 1
    if typ == "BOOL":
        ok = got == ("yes" if want else "no")
    elif isinstance(want, int):
        ok = num(got, typ) == want
    else:
        ok = got == want
    if not ok:
        bad.append(f"[{sec}] {key}: code {want!r}, samail.conf(5) {got!r}")
print(f"# compared {n} defaults")
for b in bad: print("# " + b)
sys.exit(1 if bad or n < 30 else 0)
