import Foundation
import Testing
@testable import RegToken

@Suite("Issuing and verifying tokens")
struct IssueVerifyTests {
    @Test("HS256 and ES256 tokens round-trip with every claim", arguments: [Algorithm.hs256, .es256])
    func roundTrip(_ alg: Algorithm) throws {
        let key = alg == .hs256 ? Fixture.hsKey : Fixture.esKey
        let claims = Fixture.claims(scope: .pushPull, namespaces: ["acme", "acme-tools"])
        let token = try Fixture.issue(claims, with: key)
        let verified = try Fixture.verifier().verify(token, at: Fixture.now, for: AccessRequest(region: Fixture.region, access: .push, namespace: "acme-tools"))
        #expect(verified.id == claims.id)
        #expect(verified.account.string == "acme")
        #expect(verified.region.string == Fixture.region)
        #expect(verified.scope == .pushPull)
        #expect(verified.issuedAt == Fixture.now)
        #expect(verified.expiresAt == Fixture.now + 86_400)
        #expect(verified.keyID.string == key.id)
        #expect(verified.algorithm == alg)
        #expect(verified.isNamespaceRestricted)
    }

    @Test("the issuer writes header and claims in the fixed order without whitespace")
    func wireFormat() throws {
        let id = try #require(UUIDBytes("0b4e6a52-6f8e-4c1d-9a51-3f6e2c1d0a99"))
        let claims = Fixture.claims(id: id, scope: .pushPull, expiresAt: nil, namespaces: ["acme"])
        let token = try Fixture.issue(claims)
        let parts = token.split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        #expect(Base64URL.decode(parts[0]).map { String(decoding: $0, as: UTF8.self) } == #"{"alg":"HS256","kid":"hs-test","typ":"JWT"}"#)
        #expect(Base64URL.decode(parts[1]).map { String(decoding: $0, as: UTF8.self) }
            == #"{"jti":"0b4e6a52-6f8e-4c1d-9a51-3f6e2c1d0a99","sub":"acme","region":"eu-west-1","scope":"pull,push","iat":1800000000,"namespaces":["acme"]}"#)
        #expect(try TokenClaims(json: Base64URL.decode(parts[1]) ?? []) == claims)
    }

    @Test("a non-expiring token verifies at any time; a default token lasts 24 hours")
    func lifetimes() throws {
        let verifier = try Fixture.verifier()
        let forever = try Fixture.issue(Fixture.claims(expiresAt: nil))
        #expect(try verifier.verify(forever, at: Fixture.now + 10 * 365 * 86_400, for: Fixture.pull).expiresAt == nil)
        let day = try Fixture.issue(Fixture.claims(expiresAt: Fixture.now + TokenClaims.defaultLifetime))
        #expect(throws: Never.self) { try verifier.verify(day, at: Fixture.now + 86_399, for: Fixture.pull) }
        #expect(tokenErrorCode { _ = try verifier.verify(day, at: Fixture.now + 86_400 + 60, for: Fixture.pull) } == .expired)
    }

    @Test("the issuer refuses claims it would not verify")
    func issuerValidation() throws {
        let issuer = try TokenIssuer(key: Fixture.hsKey)
        let bad: [TokenClaims] = [
            Fixture.claims(account: ""),
            Fixture.claims(account: "acme corp"),
            Fixture.claims(region: String(repeating: "r", count: 65)),
            Fixture.claims(expiresAt: Fixture.now),
            Fixture.claims(namespaces: []),
            Fixture.claims(namespaces: ["Acme"]),
            Fixture.claims(namespaces: ["a..b"]),
            Fixture.claims(namespaces: ["acme", "acme"]),
        ]
        for claims in bad {
            #expect(throws: IssueError.self) { try issuer.issue(claims) }
        }
        let publicOnly = try #require(try Fixture.esKey.publicKey())
        #expect(throws: IssueError(.noSigningKey, "")) { try TokenIssuer(key: publicOnly) }
        #expect(throws: IssueError(.noSigningKey, "")) { try TokenIssuer(keyRing: KeyRing(keys: [Fixture.hsKey])) }
    }
}

@Suite("Every verification error code")
struct ErrorCodeTests {
    let verifier: TokenVerifier
    init() throws { verifier = try Fixture.verifier() }

    func code(_ token: String, at now: Int64 = Fixture.now, _ request: AccessRequest = Fixture.pull) -> TokenError.ErrorCode? {
        tokenErrorCode { _ = try verifier.verify(token, at: now, for: request) }
    }

    @Test("every code has a distinct stable name")
    func names() {
        let names = TokenError.ErrorCode.allCodes.map(\.description)
        #expect(Set(names).count == 13 && names.count == 13)
        #expect(names.contains("namespace_not_allowed"))
    }

    @Test("malformed") func malformed() throws {
        #expect(code("garbage") == .malformed)
        #expect(code("") == .malformed)
        #expect(code("a.b") == .malformed)
    }

    @Test("unsupported algorithm: none in every spelling, and algorithms regtoken does not accept")
    func unsupportedAlgorithm() throws {
        for alg in ["none", "None", "NONE", "nOnE", "HS384", "HS512", "RS256", "PS256", "ES384", "EdDSA", "", "hs256"] {
            let token = try Fixture.forge(header: Fixture.header(alg), claims: Fixture.claimsJSON())
            #expect(code(token) == .unsupportedAlgorithm, "alg \(alg)")
            #expect(code(Fixture.b64(Fixture.header(alg)) + "." + Fixture.b64(Fixture.claimsJSON()) + ".") == .unsupportedAlgorithm)
        }
    }

    @Test("unknown key: a kid not in the ring, or none at all")
    func unknownKey() throws {
        #expect(code(try Fixture.forge(header: Fixture.header(kid: "retired-1"), claims: Fixture.claimsJSON())) == .unknownKey)
        #expect(code(try Fixture.forge(header: #"{"alg":"HS256"}"#, claims: Fixture.claimsJSON())) == .unknownKey)
        for kid in ["../hs-test", "hs-test\\u0000", "hs-test ", "\\\"hs-test\\\"", "HS-TEST"] {
            #expect(code(try Fixture.forge(header: #"{"alg":"HS256","kid":"\#(kid)"}"#, claims: Fixture.claimsJSON())) == .unknownKey, "kid \(kid)")
        }
    }

    @Test("algorithm does not match key: HS256 keyed with an ES256 key's id (algorithm confusion)")
    func algorithmMismatch() throws {
        // An attacker signs HS256 with the ES256 public key's bytes as the secret.
        let pem = Array(try Fixture.esKey.publicKeyPEM().utf8)
        let confused = try SigningKey(id: "es-test", hmacSecret: pem)
        let token = try Fixture.forge(header: Fixture.header("HS256", kid: "es-test"), claims: Fixture.claimsJSON(), key: confused)
        #expect(code(token) == .algorithmMismatch)
        let other = try Fixture.forge(header: Fixture.header("ES256", kid: "hs-test"), claims: Fixture.claimsJSON(), key: Fixture.esKey)
        #expect(code(other) == .algorithmMismatch)
    }

    @Test("bad signature: another secret, one flipped bit, truncated or extended", arguments: [Algorithm.hs256, .es256])
    func badSignature(_ alg: Algorithm) throws {
        let key = alg == .hs256 ? Fixture.hsKey : Fixture.esKey
        let token = try Fixture.issue(Fixture.claims(), with: key)
        #expect(code(token) == nil)
        if alg == .hs256 {
            #expect(code(try Fixture.issue(Fixture.claims(), with: Fixture.otherHS)) == .badSignature)
        } else {
            let impostor = try SigningKey.generate(.es256, id: "es-test")
            #expect(code(try Fixture.issue(Fixture.claims(), with: impostor)) == .badSignature)
        }
        let parts = token.split(separator: ".").map(String.init)
        var sig = try #require(Base64URL.decode(parts[2]))
        sig[5] ^= 0x01
        #expect(code(parts[0] + "." + parts[1] + "." + Base64URL.encode(sig)) == .badSignature)
        #expect(code(parts[0] + "." + parts[1] + "." + Base64URL.encode(sig.dropLast())) == .badSignature)
        #expect(code(parts[0] + "." + parts[1] + "." + Base64URL.encode(sig + [0])) == .badSignature)
        #expect(code(parts[0] + "." + parts[1] + ".") == .badSignature)
        // The claims changed under a valid signature.
        let forgedClaims = Fixture.b64(Fixture.claimsJSON(scope: "\"pull,push\""))
        #expect(code(parts[0] + "." + forgedClaims + "." + parts[2], at: Fixture.now, Fixture.push) == .badSignature)
    }

    @Test("expired, with the clock leeway: never more than a tenth of the token's lifetime")
    func expired() throws {
        let day = try Fixture.issue(Fixture.claims(expiresAt: Fixture.now + 86_400))
        #expect(code(day, at: Fixture.now + 86_459) == nil)      // inside the 60 s leeway
        #expect(code(day, at: Fixture.now + 86_460) == .expired)
        // A 100 s token: 10 s of leeway, not 60.
        let token = try Fixture.issue(Fixture.claims(expiresAt: Fixture.now + 100))
        #expect(code(token, at: Fixture.now + 99) == nil)
        #expect(code(token, at: Fixture.now + 109) == nil)
        #expect(code(token, at: Fixture.now + 110) == .expired)
        // A 5 s token: none (a tenth of 5 s rounds down to 0).
        let short = try Fixture.issue(Fixture.claims(expiresAt: Fixture.now + 5))
        #expect(code(short, at: Fixture.now + 4) == nil)
        #expect(code(short, at: Fixture.now + 5) == .expired)
        let strict = TokenVerifier(keys: try Fixture.ring(), configuration: VerifierConfiguration(leeway: 0))
        #expect(tokenErrorCode { _ = try strict.verify(token, at: Fixture.now + 100, for: Fixture.pull) } == .expired)
    }

    @Test("not yet valid: issued in the future beyond the leeway, or before nbf")
    func notYetValid() throws {
        let token = try Fixture.issue(Fixture.claims(issuedAt: Fixture.now + 100, expiresAt: Fixture.now + 1000))
        #expect(code(token, at: Fixture.now + 40) == nil)
        #expect(code(token, at: Fixture.now + 39) == .notYetValid)
        let nbf = try Fixture.forge(header: Fixture.header(), claims: Fixture.claimsJSON(extra: ",\"nbf\":\(Fixture.now + 500)"))
        #expect(code(nbf, at: Fixture.now + 439) == .notYetValid)
        #expect(code(nbf, at: Fixture.now + 440) == nil)
    }

    @Test("wrong region") func wrongRegion() throws {
        let token = try Fixture.issue(Fixture.claims(region: "us-east-1"))
        #expect(code(token) == .wrongRegion)
    }

    @Test("insufficient scope: a pull token cannot push; a push token can pull")
    func insufficientScope() throws {
        let pull = try Fixture.issue(Fixture.claims(scope: .pull))
        #expect(code(pull, at: Fixture.now, Fixture.push) == .insufficientScope)
        let push = try Fixture.issue(Fixture.claims(scope: .pushPull))
        #expect(code(push, at: Fixture.now, Fixture.push) == nil)
        #expect(code(push, at: Fixture.now, Fixture.pull) == nil)
    }

    @Test("namespace not allowed: outside the token's list, or owned by another account")
    func namespaceNotAllowed() throws {
        let limited = try Fixture.issue(Fixture.claims(namespaces: ["acme", "acme-ci"]))
        #expect(code(limited, at: Fixture.now, AccessRequest(region: Fixture.region, access: .pull, namespace: "acme-ci")) == nil)
        #expect(code(limited, at: Fixture.now, AccessRequest(region: Fixture.region, access: .pull, namespace: "other")) == .namespaceNotAllowed)
        #expect(code(limited, at: Fixture.now, Fixture.pull) == nil) // no namespace asked (GET /v2/)
        let open = try Fixture.issue(Fixture.claims())
        #expect(code(open, at: Fixture.now, AccessRequest(region: Fixture.region, access: .pull, namespace: "anything", namespaceOwner: "acme")) == nil)
        #expect(code(open, at: Fixture.now, AccessRequest(region: Fixture.region, access: .pull, namespace: "globex", namespaceOwner: "globex")) == .namespaceNotAllowed)
    }

    @Test("revoked") func revoked() throws {
        let claims = Fixture.claims()
        let token = try Fixture.issue(claims)
        #expect(code(token) == nil)
        try verifier.install(RevocationList(version: 1, issuedAt: Fixture.now, entries: [.init(id: claims.id, expiresAt: claims.expiresAt)]))
        #expect(code(token) == .revoked)
        #expect(code(try Fixture.issue(Fixture.claims())) == nil)
    }
}
