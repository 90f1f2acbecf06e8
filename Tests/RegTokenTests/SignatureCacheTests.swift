import CRegTokenMallocCounter
import Foundation
import Synchronization
import Testing
@testable import RegToken

@Suite("The ES256 verified-signature cache", .serialized)
struct SignatureCacheTests {
    let key = Fixture.esKey

    func verifier(capacity: Int = 1024) throws -> TokenVerifier {
        TokenVerifier(keys: try Fixture.ring(), configuration: VerifierConfiguration(signatureCacheCapacity: capacity))
    }

    @Test("a hit skips the curve arithmetic: no allocation at all, where a miss allocates inside OpenSSL")
    func hitSkipsECDSA() throws {
        let token = try Fixture.issue(Fixture.claims(), with: key)
        var bytes = Array(token.utf8)
        func allocations(_ v: TokenVerifier) -> Int {
            _ = bytes.withUnsafeBytes { try? v.verify(bytes: $0, at: Fixture.now, for: Fixture.pull) }  // warm up
            #expect(CRegTokenMallocCounter_pauseThrowHooks() == 1)
            defer { CRegTokenMallocCounter_resumeThrowHooks() }
            CRegTokenMallocCounter_start()
            for _ in 0..<20 { _ = bytes.withUnsafeBytes { try? v.verify(bytes: $0, at: Fixture.now, for: Fixture.pull) } }
            return CRegTokenMallocCounter_stop()
        }
        let cached = try verifier()
        #expect(throws: Never.self) { try bytes.withUnsafeBytes { try cached.verify(bytes: $0, at: Fixture.now, for: Fixture.pull) } }
        #expect(allocations(cached) == 0)
        let uncached = try verifier(capacity: 0)
        #expect(throws: Never.self) { try bytes.withUnsafeBytes { try uncached.verify(bytes: $0, at: Fixture.now, for: Fixture.pull) } }
        #expect(allocations(uncached) >= 20)
        bytes[0] = bytes[0]
    }

    @Test("a token that differs by one byte after a hit is verified afresh and rejected")
    func oneByte() throws {
        let v = try verifier()
        let token = try Fixture.issue(Fixture.claims(scope: .pushPull), with: key)
        #expect(throws: Never.self) { try v.verify(token, at: Fixture.now, for: Fixture.pull) }
        #expect(throws: Never.self) { try v.verify(token, at: Fixture.now, for: Fixture.pull) }  // hit
        var bytes = Array(token.utf8)
        for position in [bytes.count - 2, bytes.count - 40, bytes.count - 70] {
            var changed = bytes
            changed[position] = changed[position] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            let code = tokenErrorCode { _ = try changed.withUnsafeBytes { try v.verify(bytes: $0, at: Fixture.now, for: Fixture.pull) } }
            #expect(code == .badSignature || code == .malformed, "position \(position): \(String(describing: code))")
        }
        // A forged claims segment under the cached token's signature.
        let parts = token.split(separator: ".").map(String.init)
        let forged = parts[0] + "." + Fixture.b64(Fixture.claimsJSON(scope: "\"pull,push,delete\"")) + "." + parts[2]
        #expect(tokenErrorCode { _ = try v.verify(forged, at: Fixture.now, for: Fixture.pull) } == .badSignature)
        bytes[0] = bytes[0]
    }

    @Test("expiry, revocation and scope still hold on a hit")
    func checksOnHit() throws {
        let v = try verifier()
        let claims = Fixture.claims(scope: .pull, expiresAt: Fixture.now + 100, namespaces: ["acme"])
        let token = try Fixture.issue(claims, with: key)
        #expect(throws: Never.self) { try v.verify(token, at: Fixture.now, for: Fixture.pull) }
        #expect(tokenErrorCode { _ = try v.verify(token, at: Fixture.now, for: Fixture.push) } == .insufficientScope)
        #expect(tokenErrorCode { _ = try v.verify(token, at: Fixture.now + 200, for: Fixture.pull) } == .expired)
        #expect(tokenErrorCode { _ = try v.verify(token, at: Fixture.now, for: AccessRequest(region: "us-east-1", access: .pull)) } == .wrongRegion)
        #expect(tokenErrorCode { _ = try v.verify(token, at: Fixture.now, for: AccessRequest(region: Fixture.region, access: .pull, namespace: "other")) } == .namespaceNotAllowed)
        try v.install(RevocationList(version: 1, issuedAt: Fixture.now, entries: [.init(id: claims.id, expiresAt: claims.expiresAt)]))
        #expect(tokenErrorCode { _ = try v.verify(token, at: Fixture.now, for: Fixture.pull) } == .revoked)
    }

    @Test("a key replaced under the same kid does not inherit the old key's cached verdicts")
    func keySwap() throws {
        let v = try verifier()
        let token = try Fixture.issue(Fixture.claims(), with: key)
        #expect(throws: Never.self) { try v.verify(token, at: Fixture.now, for: Fixture.pull) }
        let impostor = try SigningKey.generate(.es256, id: "es-test")
        v.replaceKeys(try KeyRing(keys: [impostor, Fixture.hsKey]))
        #expect(tokenErrorCode { _ = try v.verify(token, at: Fixture.now, for: Fixture.pull) } == .badSignature)
        v.replaceKeys(try KeyRing(keys: [try #require(try key.publicKey())]))
        #expect(throws: Never.self) { try v.verify(token, at: Fixture.now, for: Fixture.pull) }
    }

    @Test("bounded and safe under concurrency: a 4-slot cache, many tokens, three threads, no wrong decision")
    func concurrency() throws {
        let v = try verifier(capacity: 4)
        let good = try (0..<16).map { _ in try Fixture.issue(Fixture.claims(), with: key) }
        let bad = try (0..<8).map { _ in try Fixture.issue(Fixture.claims(), with: SigningKey.generate(.es256, id: "es-test")) }
        let wrong = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        for t in 0..<3 {
            Thread {
                var errors = 0
                for i in 0..<400 {
                    let g = good[(i + t) % good.count]
                    if (try? v.verify(g, at: Fixture.now, for: Fixture.pull)) == nil { errors += 1 }
                    let b = bad[(i * 3 + t) % bad.count]
                    if (try? v.verify(b, at: Fixture.now, for: Fixture.pull)) != nil { errors += 1 }
                }
                wrong.add(errors, ordering: .relaxed)
                done.signal()
            }.start()
        }
        for _ in 0..<3 { done.wait() }
        #expect(wrong.load(ordering: .relaxed) == 0)
    }

    @Test("tokens longer than the cacheable size are always verified, and still correct")
    func longTokens() throws {
        let v = TokenVerifier(keys: try Fixture.ring(), configuration: VerifierConfiguration(signatureCacheCapacity: 16, cacheableTokenBytes: 64))
        let token = try Fixture.issue(Fixture.claims(), with: key)
        for _ in 0..<3 { #expect(throws: Never.self) { try v.verify(token, at: Fixture.now, for: Fixture.pull) } }
        let impostor = try Fixture.issue(Fixture.claims(), with: SigningKey.generate(.es256, id: "es-test"))
        #expect(tokenErrorCode { _ = try v.verify(impostor, at: Fixture.now, for: Fixture.pull) } == .badSignature)
    }
}
