import Foundation
import Synchronization
import Testing
@testable import RegToken

@Suite("Concurrency")
struct ConcurrencyTests {
    @Test("threads verify while key rings and revocation lists are swapped underneath: no wrong decision")
    func swapsUnderLoad() throws {
        let k1 = try SigningKey.generate(.hs256, id: "k1")
        let k2 = try SigningKey.generate(.es256, id: "k2")
        let k3 = try SigningKey.generate(.hs256, id: "k3")
        let ringWith3 = try KeyRing(keys: [k1, k2, k3])
        let ringWithout3 = try KeyRing(keys: [k1, k2])
        let verifier = TokenVerifier(keys: ringWith3)

        let revokedID = UUIDBytes.random()
        let valid1 = try Fixture.issue(Fixture.claims(), with: k1)
        let valid2 = try Fixture.issue(Fixture.claims(), with: k2)
        let revoked = try Fixture.issue(Fixture.claims(id: revokedID), with: k1)
        let flaky = try Fixture.issue(Fixture.claims(), with: k3)   // its key comes and goes
        let forged = try Fixture.issue(Fixture.claims(), with: SigningKey.generate(.hs256, id: "k1"))
        try verifier.install(RevocationList(version: 1, issuedAt: Fixture.now, entries: [.init(id: revokedID, expiresAt: nil)]))

        let stop = Atomic<Bool>(false)
        let wrong = Atomic<Int>(0)
        let checked = Atomic<Int>(0)
        let progress = Atomic<Int>(0)
        let readers = 3
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<readers {
            Thread {
                var n = 0
                while !stop.load(ordering: .relaxed) {
                    var bad = 0
                    if tokenErrorCode({ _ = try verifier.verify(valid1, at: Fixture.now, for: Fixture.pull) }) != nil { bad += 1 }
                    if tokenErrorCode({ _ = try verifier.verify(valid2, at: Fixture.now, for: Fixture.pull) }) != nil { bad += 1 }
                    if tokenErrorCode({ _ = try verifier.verify(revoked, at: Fixture.now, for: Fixture.pull) }) != .revoked { bad += 1 }
                    if tokenErrorCode({ _ = try verifier.verify(forged, at: Fixture.now, for: Fixture.pull) }) != .badSignature { bad += 1 }
                    let f = tokenErrorCode({ _ = try verifier.verify(flaky, at: Fixture.now, for: Fixture.pull) })
                    if f != nil && f != .unknownKey { bad += 1 }
                    if bad > 0 { wrong.add(bad, ordering: .relaxed) }
                    n += 5
                    progress.add(5, ordering: .relaxed)
                }
                checked.add(n, ordering: .relaxed)
                done.signal()
            }.start()
        }
        // The writer: alternate key rings, and publish ever newer lists that keep revoking the same id
        // plus a changing set of others; at least 100 times, and until the readers have checked
        // 3,000 times (writers wait only for readers of what they replace, so 100 swaps alone can
        // be over before the reader threads start).
        var version: UInt64 = 1
        let deadline = Date().addingTimeInterval(30)
        var swaps = 0
        while (swaps < 100 || progress.load(ordering: .relaxed) < 3_000) && Date() < deadline {
            verifier.replaceKeys(swaps % 2 == 0 ? ringWithout3 : ringWith3)
            version += 1
            let others = (0..<(swaps % 50)).map { _ in RevocationList.Entry(id: .random(), expiresAt: nil) }
            try verifier.install(RevocationList(version: version, issuedAt: Fixture.now, entries: [.init(id: revokedID, expiresAt: nil)] + others))
            swaps += 1
        }
        stop.store(true, ordering: .relaxed)
        for _ in 0..<readers { done.wait() }
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(swaps >= 100)
        #expect(checked.load(ordering: .relaxed) >= 3_000)
        #expect(verifier.revocationVersion == version)
    }
}
