#!/usr/bin/python3
"""The other side of coffer's jose interoperability tests: python3-jwcrypto and python3-jwt.

Run with Debian's /usr/bin/python3. Every command reads its inputs from files and writes its
result to stdout; a failure exits non-zero with the reason on stderr.
"""
import json
import sys

import jwcrypto.jwe
import jwcrypto.jwk
import jwt
from cryptography.hazmat.primitives import serialization


def read(path):
    with open(path, "rb") as f:
        return f.read()


def load_jwk(path):
    return jwcrypto.jwk.JWK(**json.loads(read(path)))


def pem_of(key, private):
    if private:
        return key.export_to_pem(private_key=True, password=None)
    return key.export_to_pem()


def jwe_decrypt(jwk_path, jwe_path):
    token = jwcrypto.jwe.JWE()
    token.deserialize(read(jwe_path).decode(), key=load_jwk(jwk_path))
    sys.stdout.write(token.payload.hex())


def jwe_encrypt(jwk_path, alg, plaintext_path, form):
    header = {"alg": alg, "enc": "A256GCM", "kid": "jwcrypto"}
    token = jwcrypto.jwe.JWE(read(plaintext_path), protected=json.dumps(header))
    token.add_recipient(load_jwk(jwk_path))
    sys.stdout.write(token.serialize(compact=(form == "compact")))


def jwt_verify(jwk_path, alg, token_path):
    key = load_jwk(jwk_path)
    claims = jwt.decode(read(token_path).decode(), pem_of(key, False), algorithms=[alg],
                        options={"require": ["exp"]})
    sys.stdout.write(json.dumps(claims, sort_keys=True))


def jwt_sign(jwk_path, alg, claims_path):
    key = load_jwk(jwk_path)
    private = serialization.load_pem_private_key(pem_of(key, True), password=None)
    sys.stdout.write(jwt.encode(json.loads(read(claims_path)), private, algorithm=alg,
                                headers={"kid": "pyjwt"}))


def jwk_import(jwk_path):
    key = load_jwk(jwk_path)
    sys.stdout.write(json.dumps({"thumbprint": key.thumbprint(), "private": key.has_private}))


def jwk_generate(kty, param):
    if kty == "RSA":
        key = jwcrypto.jwk.JWK.generate(kty="RSA", size=int(param))
    else:
        key = jwcrypto.jwk.JWK.generate(kty=kty, crv=param)
    sys.stdout.write(json.dumps({"jwk": json.loads(key.export(private_key=True)),
                                 "thumbprint": key.thumbprint()}))


COMMANDS = {
    "jwe-decrypt": jwe_decrypt,
    "jwe-encrypt": jwe_encrypt,
    "jwt-verify": jwt_verify,
    "jwt-sign": jwt_sign,
    "jwk-import": jwk_import,
    "jwk-generate": jwk_generate,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: jose_peer.py {%s} ARGS..." % ",".join(sorted(COMMANDS)))
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except Exception as e:  # report any library error as a test failure with its reason
        sys.exit("%s: %s: %s" % (sys.argv[1], type(e).__name__, e))
