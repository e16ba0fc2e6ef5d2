#!/bin/sh
# mkcerts.sh DIR — a throw-away test PKI for the loopback SMTP server:
#   DIR/ca.pem, DIR/ca.key          test CA
#   DIR/server.pem, DIR/server.key  server cert for 127.0.0.1 and localhost,
#                                   signed by that CA
#   DIR/other-ca.pem                an unrelated CA (verification must fail)
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
rm -f server.csr server.ext ca.srl
chmod 600 ca.key server.key other-ca.key
