#!/usr/bin/env python3
"""Writes the seed corpus in Fuzz/Corpus/<Target>/ (committed; run again only to change it).

Tokens and lists are signed here with PyJWT and `cryptography` (not with regtoken), using the
fuzz targets' fixed keys: HS256 secret 32 x 0x42 ("hs-fuzz"), the RFC 7515 A.3 P-256 key
("es-fuzz"). The clock of the targets is 1_800_000_000.
"""
import base64, json, os, shutil, sys
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = 1_800_000_000
HS = b"\x42" * 32
def b64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
D = b64("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI")
ES = ec.derive_private_key(int.from_bytes(D, "big"), ec.SECP256R1())
ES_SEC1 = ES.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
ES_PKCS8 = ES.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
ES_PUB = ES.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

def claims(**extra):
    c = {"jti": "5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "sub": "acme", "region": "eu-west-1",
         "scope": "pull", "iat": NOW - 10, "exp": NOW + 86400}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}

def compact(obj): return json.dumps(obj, separators=(",", ":")).encode()
def hs(c, typ="JWT"): return jwt.encode(c, HS, algorithm="HS256", headers={"kid": "hs-fuzz", "typ": typ}).encode()
def es(c): return jwt.encode(c, ES, algorithm="ES256", headers={"kid": "es-fuzz", "typ": "JWT"}).encode()

seeds = {}
def seed(target, name, data): seeds.setdefault(target, {})[name] = data

# FuzzVerify: mode byte, then the rest (see the target).
rw = claims(scope="pull,push")
seed("FuzzVerify", "hs256-pull", b"\x00" + hs(claims()))
seed("FuzzVerify", "hs256-readwrite", b"\x00" + hs(rw))
seed("FuzzVerify", "es256-pull", b"\x00" + es(claims()))
seed("FuzzVerify", "hs256-expired", b"\x00" + hs(claims(exp=NOW - 3600)))
seed("FuzzVerify", "alg-none", b"\x00" + base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=") + b"." + base64.urlsafe_b64encode(compact(claims())).rstrip(b"=") + b".")
seed("FuzzVerify", "header-and-claims", b"\x01" + compact({"alg": "HS256", "kid": "hs-fuzz", "typ": "JWT"}) + b"\xff" + compact(rw))
seed("FuzzVerify", "header-extra-member", b"\x01" + compact({"alg": "HS256", "kid": "hs-fuzz", "jku": "http://x"}) + b"\xff" + compact(claims()))
seed("FuzzVerify", "claims-namespaces", b"\x02" + compact(claims(scope="pull,push,delete", namespaces=["acme", "acme-ci"])))
seed("FuzzVerify", "claims-non-expiring", b"\x02" + compact(claims(exp=None)))
seed("FuzzVerify", "claims-escapes", b"\x02" + b'{"jti":"5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","sub":"ac\\u006de","region":"eu-west-1","scope":"pull","iat":1799999990,"exp":1800086400}')
seed("FuzzVerify", "claims-es256", b"\x03" + compact(rw))
seed("FuzzVerify", "claims-rules", b"\x02" + compact(claims(scope="pull,push", repositories=["acme/ci-*:pull,push", "acme/base/**:pull"])))
seed("FuzzVerify", "claims-allow-from", b"\x02" + compact(claims(allow_from=["10.0.0.0/8", "2001:db8::/32"], repositories=["acme/**:pull"])))
seed("FuzzVerify", "matcher", b"\x04" + b"acme/**/ci-*-x" + b"\xff" + b"acme/a/b/ci-1-x")

# FuzzAuthorization: the Authorization header values, one per line.
tok = hs(rw)
seed("FuzzAuthorization", "basic", b"Basic " + base64.b64encode(b"token:" + tok))
seed("FuzzAuthorization", "bearer", b"Bearer " + tok)
seed("FuzzAuthorization", "skopeo-empty", b"Basic Og==")
seed("FuzzAuthorization", "two-headers", b"Bearer abc\nBasic dG9rZW46YWJj")
seed("FuzzAuthorization", "wrong-user", b"basic " + base64.b64encode(b"admin:secret"))

# FuzzDecision: method, request target, Authorization values; one per line.
basic = b"Basic " + base64.b64encode(b"token:" + tok)
digest = b"sha256:" + b"a" * 64
seed("FuzzDecision", "pull-manifest", b"GET\n/v2/acme/app/manifests/v1\n" + basic)
seed("FuzzDecision", "push-blob", b"POST\n/v2/acme/app/blobs/uploads/\nBearer " + tok)
seed("FuzzDecision", "mount", b"POST\n/v2/acme-ci/app/blobs/uploads/?mount=" + digest + b"&from=acme%2Fbase\n" + basic)
seed("FuzzDecision", "other-account", b"HEAD\n/v2/globex/app/blobs/" + digest + b"\n" + basic)
seed("FuzzDecision", "delete", b"DELETE\n/v2/acme/app/manifests/" + digest + b"\n" + basic)
seed("FuzzDecision", "base", b"GET\n/v2/\n" + basic)
seed("FuzzDecision", "catalog", b"GET\n/v2/_catalog?n=10\nBearer " + tok)
seed("FuzzDecision", "traversal", b"GET\n/v2/acme/%2E%2E/globex/app/manifests/v1\n" + basic)
seed("FuzzDecision", "upload-chunk", b"PATCH\n/v2/acme/app/blobs/uploads/3f1c-aa_b=?_state=xyz\n" + basic)
seed("FuzzDecision", "tags", b"GET\n/v2/acme/team/app/tags/list?n=10&last=v1\n" + basic)

# FuzzRevocations: mode byte, then a signed list (0) or a list's content (1).
content = {"version": 7, "iat": NOW - 60, "revoked": [["5b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", NOW + 3600], ["0f1e2d3c-4b5a-4697-8877-665544332211", None]]}
seed("FuzzRevocations", "signed-list", b"\x00" + jwt.encode(content, HS, algorithm="HS256", headers={"kid": "hs-fuzz", "typ": "regtoken-revocations+jwt"}).encode() + b"\n")
seed("FuzzRevocations", "content", b"\x01" + compact(content))
seed("FuzzRevocations", "content-empty", b"\x01" + compact({"version": 1, "iat": NOW, "revoked": []}))

# FuzzKeys: mode byte, then a PEM key (0), a JWKS (1), an HS256 secret (2), a namespaces file (3).
nums = ES.public_key().public_numbers()
def b64u(n): return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
seed("FuzzKeys", "pem-sec1", b"\x00" + ES_SEC1)
seed("FuzzKeys", "pem-pkcs8", b"\x00" + ES_PKCS8)
seed("FuzzKeys", "pem-public", b"\x00" + ES_PUB)
seed("FuzzKeys", "jwks", b"\x01" + compact({"keys": [{"kty": "EC", "crv": "P-256", "x": b64u(nums.x), "y": b64u(nums.y), "kid": "es-fuzz", "alg": "ES256", "use": "sig"}]}))
seed("FuzzKeys", "hs256-secret", b"\x02" + HS)
seed("FuzzKeys", "namespaces", b"\x03" + b"# namespace account\nacme acme\nacme-ci acme\nglobex\tglobex\n")

# FuzzForwarding: raw client bytes; @RW@ and @RO@ stand for Basic credentials of a valid
# non-expiring read-write or pull-only acme token (the target puts them in). The first byte
# also says where the target splits the input into two reads.
def req(method, target, headers=b"", body=b"", auth=b"@RW@"):
    return method + b" " + target + b" HTTP/1.1\r\nHost: registry\r\nAuthorization: " + auth + b"\r\n" + headers + b"\r\n" + body
smuggle = b"GET /v2/_catalog HTTP/1.1\r\nHost: smuggled\r\n\r\n"
seed("FuzzForwarding", "pull", req(b"GET", b"/v2/acme/app/manifests/v1", auth=b"@RO@"))
seed("FuzzForwarding", "pipelined", req(b"GET", b"/v2/", auth=b"@RO@") + req(b"HEAD", b"/v2/acme/app/blobs/" + digest) + req(b"GET", b"/v2/acme/app/tags/list"))
seed("FuzzForwarding", "patch-length", req(b"PATCH", b"/v2/acme/app/blobs/uploads/u1?_state=x", b"Content-Type: application/octet-stream\r\nContent-Length: 5\r\n", b"hello") + req(b"GET", b"/v2/"))
seed("FuzzForwarding", "patch-chunked", req(b"PATCH", b"/v2/acme/app/blobs/uploads/u1", b"Content-Type: application/octet-stream\r\nTransfer-Encoding: Chunked\r\n", b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n") + req(b"GET", b"/v2/"))
seed("FuzzForwarding", "put-manifest", req(b"PUT", b"/v2/acme/app/manifests/v1", b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2\r\n", b"{}"))
seed("FuzzForwarding", "get-chunked-smuggle", req(b"GET", b"/v2/acme/app/tags/list", b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + smuggle))
seed("FuzzForwarding", "connection-content-length", req(b"GET", b"/v2/", b"Connection: Content-Length\r\nContent-Length: " + str(len(smuggle)).encode() + b"\r\n", smuggle))
seed("FuzzForwarding", "form-mount", req(b"POST", b"/v2/acme/app/blobs/uploads/", b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 30\r\n", b"mount=" + digest[:10] + b"&from=globex/a"))
seed("FuzzForwarding", "post-then-pipelined", req(b"POST", b"/v2/acme/app/blobs/uploads/?mount=" + digest + b"&from=acme/base", b"Content-Length: 0\r\n") + req(b"DELETE", b"/v2/acme/app/blobs/uploads/u1"))
seed("FuzzForwarding", "http10", b"\x05GET /v2/ HTTP/1.0\r\nAuthorization: @RO@\r\nConnection: keep-alive\r\n\r\n" + req(b"GET", b"/v2/"))

# FuzzHTTP1: the first byte says where the target splits the rest (raw client bytes) into two reads.
seed("FuzzHTTP1", "get", b"\x07GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: registry\r\nAuthorization: Basic dG9rZW46eA==\r\nUser-Agent: docker/27.0\r\n\r\n")
seed("FuzzHTTP1", "patch-chunked", b"\x2aPATCH /v2/acme/app/blobs/uploads/u1 HTTP/1.1\r\nHost: registry\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;q=\"x y\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: r\r\n\r\n")
seed("FuzzHTTP1", "head-http10", b"\x03\r\nHEAD /v2/ HTTP/1.0\r\nX-Empty:\r\nX-Spaced:  a  b  \r\nContent-Length: 0\r\n\r\n")
# FuzzHTTP1Response: the first byte's high bit says whether the first of the two requests answered
# was a HEAD, the other 15 bits of the first two bytes where the rest is split in two reads; the rest
# is what the registry sent.
seed("FuzzHTTP1Response", "length-then-chunked", b"\x00\x81HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n{}HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n")
seed("FuzzHTTP1Response", "head-continue-204", b"\x80\x05HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
seed("FuzzHTTP1Response", "http10-close", b"\x00\x20HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nX-Spaced:  a  b  \r\n\r\nnot found")

for target, files in seeds.items():
    d = os.path.join(HERE, "Corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print("wrote", sum(len(f) for f in seeds.values()), "seeds")
