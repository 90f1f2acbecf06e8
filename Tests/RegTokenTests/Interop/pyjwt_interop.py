"""PyJWT side of the interoperability tests (driven by InteropTests.swift).

  verify-hs SECRET_HEX TOKEN REGION      -> prints the claims PyJWT decoded, as JSON
  verify-es JWKS_FILE TOKEN REGION       -> same, the key taken from our JWKS by the token's kid
  sign-hs SECRET_HEX KID CLAIMS_JSON     -> prints a token PyJWT signed
  sign-es PEM_FILE KID CLAIMS_JSON       -> same, ES256 with our PKCS#8 private key

Verification is PyJWT's own: signature, exp and iat against the real clock, the algorithm pinned.
Exit 1 with the PyJWT error on stderr when a token does not verify.
"""
import json
import sys

import jwt


def decode(token, key, alg, region):
    claims = jwt.decode(
        token, key, algorithms=[alg],
        options={"require": ["jti", "sub", "iat"], "verify_exp": True, "verify_iat": True},
    )
    header = jwt.get_unverified_header(token)
    if claims.get("region") != region:
        raise SystemExit("wrong region: %r" % claims.get("region"))
    print(json.dumps({"header": header, "claims": claims}, sort_keys=True))


def main():
    mode = sys.argv[1]
    try:
        if mode == "verify-hs":
            decode(sys.argv[3], bytes.fromhex(sys.argv[2]), "HS256", sys.argv[4])
        elif mode == "verify-es":
            header = jwt.get_unverified_header(sys.argv[3])
            with open(sys.argv[2]) as f:
                jwks = jwt.PyJWKSet.from_json(f.read())
            key = jwks[header["kid"]].key
            decode(sys.argv[3], key, "ES256", sys.argv[4])
        elif mode == "sign-hs":
            print(jwt.encode(json.loads(sys.argv[4]), bytes.fromhex(sys.argv[2]), algorithm="HS256",
                             headers={"kid": sys.argv[3]}))
        elif mode == "sign-es":
            with open(sys.argv[2]) as f:
                pem = f.read()
            print(jwt.encode(json.loads(sys.argv[4]), pem, algorithm="ES256", headers={"kid": sys.argv[3]}))
        else:
            raise SystemExit("unknown mode " + mode)
    except jwt.PyJWTError as e:
        print("pyjwt: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)


main()
