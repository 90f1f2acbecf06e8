import FuzzSupport
import RegToken
import RegTokenAccess

// The key loaders and the proxy's namespaces file. The first byte picks what the rest is:
//   0: a PEM key file (PKCS#8, SEC1, or a public key);
//   1: a JWKS document;
//   2: an HS256 secret;
//   3: a namespaces file.
// Invariants: no crash; a private key that loads signs, and its signature verifies with it and
// with its public key; a public key survives PEM and JWK round trips; a JWKS that loads exports
// and reloads to the same keys.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeys(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    guard let mode = input.first else { return 0 }
    let rest = Array(input.dropFirst())
    let message = Array("regtoken fuzz".utf8)
    switch mode % 4 {
    case 0:
        guard let key = try? SigningKey(id: "k", pem: String(decoding: rest, as: UTF8.self)) else { return 0 }
        Fuzz.check(key.algorithm == .es256, "a PEM key that is not ES256")
        if key.canSign {
            let signature = Fuzz.must { try key.signature(for: message) }
            Fuzz.check(key.isValidSignature(signature, for: message), "a key does not verify its own signature")
            let pub = Fuzz.must { try key.publicKey() }
            Fuzz.check(pub?.isValidSignature(signature, for: message) == true, "the public key does not verify")
        }
        let pem = Fuzz.must { try key.publicKeyPEM() }
        let reloaded = Fuzz.must { try SigningKey(id: "k", pem: pem) }
        Fuzz.check(Fuzz.must { try reloaded.publicJWK() } == Fuzz.must { try key.publicJWK() }, "the public key changed in a PEM round trip")
    case 1:
        guard let ring = try? KeyRing(jwksJSON: rest) else { return 0 }
        let json = Fuzz.must { try ring.jwksJSON() }
        let again = Fuzz.must { try KeyRing(jwksJSON: Array(json.utf8)) }
        Fuzz.check(Set(again.keys.map(\.id)) == Set(ring.keys.map(\.id)), "a JWKS round trip changed the key ids")
        for key in ring.keys {
            Fuzz.check(!key.canSign, "a JWKS gave a signing key")
            Fuzz.check(Fuzz.must { try again.key(id: key.id)?.publicJWK() } == Fuzz.must { try key.publicJWK() }, "a JWKS round trip changed key \(key.id)")
        }
    case 2:
        guard let key = try? SigningKey(id: "k", hmacSecret: rest) else { return 0 }
        Fuzz.check(rest.count >= 32, "an HS256 secret of \(rest.count) bytes was accepted")
        let mac = Fuzz.must { try key.signature(for: message) }
        Fuzz.check(mac.count == 32 && key.isValidSignature(mac, for: message), "an HS256 key does not verify its own MAC")
    default:
        guard let map = try? NamespaceMap.parse(String(decoding: rest, as: UTF8.self)) else { return 0 }
        Fuzz.check(map == (try? NamespaceMap.parse(String(decoding: rest, as: UTF8.self))), "two parses of a namespaces file differ")
    }
    return 0
}
