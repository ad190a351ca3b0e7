#!/bin/sh
# Makes the certificates the TLS unit tests use (valid for a century, so they are made once
# and committed): a server CA and two server certificates for localhost, a client CA with a
# client certificate, and a client certificate the client CA did not sign.
set -eu
cd "$(dirname "$0")"
days=36500
ca() { # name subject
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days $days -out "$1.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() { # name subject issuer extensions
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    printf 'basicConstraints=CA:FALSE\n%s\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -days $days -extfile "$1.ext" -out "$1.pem"
    rm "$1.csr" "$1.ext"
}
ca ca "Chronicle Test CA"
leaf server localhost ca 'subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth'
leaf server2 localhost-rotated ca 'subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth'
ca client-ca "Chronicle Test Client CA"
leaf client worker-1 client-ca 'subjectAltName=DNS:worker-1.example,URI:spiffe://chronicle/worker-1
extendedKeyUsage=clientAuth'
leaf stranger stranger ca 'extendedKeyUsage=clientAuth'
rm ca.key client-ca.key
