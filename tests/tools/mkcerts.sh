#!/bin/sh
# mkcerts.sh DIR — a throw-away test PKI for the loopback SMTP server:
#   DIR/ca.pem, DIR/ca.key          test CA
#   DIR/server.pem, DIR/server.key  server cert for 127.0.0.1 and localhost,
#                                   signed by that CA
#   DIR/other-ca.pem                an unrelated CA (verification must fail)
#   DIR/wronghost.pem               signed by the CA, for mail.example.net
#                                   only (the name check must fail)
#   DIR/expired.pem                 signed by the CA for 127.0.0.1 and
#                                   localhost, valid in January 2020 only
#   (both with server.key)
# EC P-256 keys: quick to make, and nothing here needs to last (30 days).
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }

ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -days 30 -subj "/CN=samail test CA" \
	-addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout server.key -out server.csr -subj "/CN=localhost"
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	"basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" > server.ext
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-out server.pem -days 30 -extfile server.ext
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout other-ca.key -out other-ca.pem -days 30 \
	-subj "/CN=samail other CA" -addext basicConstraints=critical,CA:TRUE
printf '%s\n' "subjectAltName=DNS:mail.example.net" \
	"basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" > wrong.ext
ossl req -new -key server.key -out wrong.csr -subj "/CN=mail.example.net"
ossl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-out wronghost.pem -days 30 -extfile wrong.ext
# A validity in the past: `openssl x509` (3.0) has no start date, `ca` has.
mkdir -p ca.db
: > ca.db/index
echo 01 > ca.db/serial
cat > ca.cnf <<'CNF'
[ca]
default_ca = test
[test]
database = ca.db/index
new_certs_dir = ca.db
serial = ca.db/serial
default_md = sha256
policy = any
x509_extensions = ext
[any]
commonName = supplied
[ext]
subjectAltName = IP:127.0.0.1,DNS:localhost
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
CNF
ossl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key \
	-in server.csr -out expired.pem \
	-startdate 20200101000000Z -enddate 20200201000000Z
rm -rf server.csr server.ext wrong.csr wrong.ext ca.srl ca.cnf ca.db
chmod 600 ca.key server.key other-ca.key
