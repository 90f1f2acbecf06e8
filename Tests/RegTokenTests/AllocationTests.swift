import CRegTokenMallocCounter
import Foundation
import Testing
@testable import RegToken

/// The verifier's promise: no heap allocation per verification on the HS256 path, accept or
/// reject. Counted with malloc interposed in the test executable, on the calling thread only,
/// with Swift Testing's throw hook (which allocates a backtrace per `throw`) paused meanwhile.
/// This runs in the debug build: the optimizer is not needed for the promise to hold.
@Suite("Allocation-free verification", .serialized)
struct AllocationTests {
    func allocations(_ n: Int = 100, _ body: () -> Void) -> Int {
        body()  // warm up: first-use initialisation (globals, per-thread caches) is not per verification
        #expect(CRegTokenMallocCounter_pauseThrowHooks() == 1)
        defer { CRegTokenMallocCounter_resumeThrowHooks() }
        CRegTokenMallocCounter_start()
        for _ in 0..<n { body() }
        return CRegTokenMallocCounter_stop()
    }

    @Test("the counter sees allocations (so a zero below means something)")
    func counterWorks() {
        let n = allocations {
            let a = [UInt8](repeating: 1, count: 100 + Int.random(in: 0..<2))
            #expect(a.count >= 100)
        }
        #expect(n >= 100)
    }

    @Test("HS256: accept, and every rejection, allocate nothing")
    func hs256() throws {
        let verifier = try Fixture.verifier()
        let revokedClaims = Fixture.claims()
        try verifier.install(RevocationList(version: 1, issuedAt: Fixture.now, entries: (0..<1000).map { _ in .init(id: .random(), expiresAt: nil) } + [.init(id: revokedClaims.id, expiresAt: nil)]))
        let request = AccessRequest(region: Fixture.region, access: .push, namespace: "acme-ci", namespaceOwner: "acme",
                                    repository: "acme-ci/services/payments/api", clientAddress: IPAddress("10.1.2.3"))
        func fine(_ rules: [String]?, _ ranges: [String]? = nil) throws -> String {
            var claims = Fixture.claims(scope: .pushPull)
            claims.repositories = rules?.map { RepositoryRule(claim: $0)! }
            claims.allowFrom = ranges?.map { AddressRange($0)! }
            return try Fixture.issue(claims)
        }
        let eight = ["acme-ci/a-*:pull,push", "acme-ci/base/**:pull", "acme-ci/tools/*:pull", "acme-ci/web-*-cache:pull,push",
                     "acme-ci/mirror/**/alpine:pull", "acme-ci/docs:pull", "acme-ci/qa-*/**:pull,push", "acme-ci/services/**/api:pull,push"]
        let cases: [(String, TokenError.ErrorCode?)] = [
            (try fine(eight, ["192.0.2.0/24", "2001:db8::/32", "10.0.0.0/8"]), nil),
            (try fine(Array(eight.dropLast())), .repositoryNotAllowed),
            (try fine(nil, ["192.0.2.0/24"]), .addressNotAllowed),
            (try Fixture.issue(Fixture.claims(scope: .pushPull, namespaces: ["acme", "acme-ci"])), nil),
            (try Fixture.issue(Fixture.claims(scope: .pushPull)), nil),
            ("not a token", .malformed),
            (try Fixture.forge(header: Fixture.header("none"), claims: Fixture.claimsJSON()), .unsupportedAlgorithm),
            (try Fixture.forge(header: Fixture.header(kid: "gone"), claims: Fixture.claimsJSON()), .unknownKey),
            (try Fixture.issue(Fixture.claims(scope: .pushPull), with: Fixture.otherHS), .badSignature),
            (try Fixture.issue(Fixture.claims(scope: .pushPull, issuedAt: Fixture.now - 7200, expiresAt: Fixture.now - 3600)), .expired),
            (try Fixture.issue(Fixture.claims(region: "us-east-1", scope: .pushPull)), .wrongRegion),
            (try Fixture.issue(Fixture.claims(scope: .pull)), .insufficientScope),
            (try Fixture.issue(Fixture.claims(scope: .pushPull, namespaces: ["other"])), .namespaceNotAllowed),
            (try Fixture.issue(TokenClaims(id: revokedClaims.id, account: "acme", region: Fixture.region, scope: .pushPull, issuedAt: Fixture.now, expiresAt: nil)), .revoked),
        ]
        for (token, expected) in cases {
            var utf8 = Array(token.utf8)
            #expect(tokenErrorCode { _ = try utf8.withUnsafeBytes { try verifier.verify(bytes: $0, at: Fixture.now, for: request) } } == expected)
            let n = allocations {
                utf8.withUnsafeBytes { bytes in
                    _ = try? verifier.verify(bytes: bytes, at: Fixture.now, for: request)
                }
            }
            #expect(n == 0, "\(expected?.description ?? "accept") allocated \(n) times in 100 verifications")
            utf8[0] = utf8[0]
        }
    }

    @Test("verifying a String token allocates nothing either")
    func stringInput() throws {
        let verifier = try Fixture.verifier()
        let token = try Fixture.issue(Fixture.claims())
        let n = allocations { _ = try? verifier.verify(token, at: Fixture.now, for: Fixture.pull) }
        #expect(n == 0)
    }
}
