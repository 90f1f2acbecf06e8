import Foundation
import Testing
@testable import RegToken

@Suite("The revocation list")
struct RevocationTests {
    let key = Fixture.esKey

    func list(version: UInt64, ids: [UUIDBytes], expiresAt: Int64? = Fixture.now + 3600) -> RevocationList {
        RevocationList(version: version, issuedAt: Fixture.now, entries: ids.map { .init(id: $0, expiresAt: expiresAt) })
    }

    @Test("signed, written atomically, loaded and verified; lookups find exactly the listed ids")
    func roundTrip() throws {
        let dir = try temporaryDirectory()
        let ids = (0..<1000).map { _ in UUIDBytes.random() }
        let original = RevocationList(version: 7, issuedAt: Fixture.now,
                                      entries: ids.enumerated().map { .init(id: $1, expiresAt: $0 % 2 == 0 ? nil : Fixture.now + 99) })
        try original.write(to: "\(dir)/revocations.jws", signedWith: key)
        #expect(try AtomicFile.permissions(of: "\(dir)/revocations.jws") == 0o644)
        #expect(try AtomicFile.list(dir) == ["revocations.jws"])  // no temporary file left behind
        let loaded = try RevocationList.load(path: "\(dir)/revocations.jws", keys: KeyRing(keys: [try #require(try key.publicKey())]))
        #expect(loaded == original)
        #expect(loaded.entries.count == 1000)
        let table = RevocationTable(loaded.entries.map(\.id))
        for id in ids { #expect(table.contains(id)) }
        for _ in 0..<1000 { #expect(!table.contains(UUIDBytes.random())) }
        #expect(ids.allSatisfy(loaded.contains))
        // The file is one JWS whose header typ marks it as a revocation list.
        let text = try String(contentsOfFile: "\(dir)/revocations.jws", encoding: .utf8)
        let header = try #require(Base64URL.decode(String(text.prefix { $0 != "." })))
        #expect(String(decoding: header, as: UTF8.self).contains("\"typ\":\"regtoken-revocations+jwt\""))
    }

    @Test("entries whose token expired more than the retention ago are dropped when written")
    func pruning() throws {
        let a = UUIDBytes.random(), b = UUIDBytes.random(), c = UUIDBytes.random()
        let first = RevocationList(version: 1, issuedAt: Fixture.now, entries: [.init(id: a, expiresAt: Fixture.now + 10), .init(id: b, expiresAt: nil)])
        let later = Fixture.now + 10 + RevocationList.retentionAfterExpiry
        #expect(first.hasExpiredEntries(at: later))
        #expect(!first.hasExpiredEntries(at: later - 1))
        let next = try first.next(adding: [.init(id: c, expiresAt: later + 100)], now: later)
        #expect(next.version == 2)
        #expect(next.issuedAt == later)
        #expect(Set(next.entries.map(\.id)) == [b, c])
        // Kept while a verifier with the largest leeway could still accept the token.
        let soon = try first.next(adding: [], now: Fixture.now + 10 + VerifierConfiguration.maximumLeeway)
        #expect(soon.contains(a))
    }

    @Test("a bad signature, a foreign key, a token, or malformed content is refused and the list in force stays")
    func refused() throws {
        let verifier = TokenVerifier(keys: try KeyRing(keys: [key, Fixture.hsKey]))
        let revokedID = UUIDBytes.random()
        let good = try list(version: 3, ids: [revokedID]).signed(with: key)
        #expect(try verifier.loadRevocations(signed: good).changed)
        #expect(verifier.revocationVersion == 3)

        var tampered = good
        tampered[tampered.count - 10] = tampered[tampered.count - 10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: RevocationError(.badSignature, "")) { try verifier.loadRevocations(signed: tampered) }
        let foreign = try list(version: 9, ids: []).signed(with: SigningKey.generate(.es256, id: "es-test"))
        #expect(throws: RevocationError(.badSignature, "")) { try verifier.loadRevocations(signed: foreign) }
        let unknownKid = try list(version: 9, ids: []).signed(with: SigningKey.generate(.es256, id: "es-other"))
        #expect(throws: RevocationError(.badSignature, "")) { try verifier.loadRevocations(signed: unknownKid) }
        // A token is not a revocation list, even though it is signed by a trusted key.
        let token = try Fixture.issue(Fixture.claims())
        #expect(throws: RevocationError(.malformed, "")) { try verifier.loadRevocations(signed: Array(token.utf8)) }
        // Signed but malformed payloads.
        for payload in ["{\"version\":10}", "{\"version\":-1,\"iat\":0,\"revoked\":[]}", "{\"version\":10,\"iat\":0,\"revoked\":[[\"nope\",null]]}",
                        "{\"version\":10,\"iat\":0,\"revoked\":[[\"\(revokedID)\",1],[\"\(revokedID)\",2]]}", "{\"version\":10,\"iat\":0,\"revoked\":[[\"\(revokedID)\",1,2]]}", "not json"] {
            let signed = Array(try JWS.sign(payload: Array(payload.utf8), key: key, type: RevocationList.jwsType).utf8)
            #expect(throws: RevocationError(.malformed, ""), "\(payload)") { try verifier.loadRevocations(signed: signed) }
        }
        #expect(throws: RevocationError(.malformed, "")) { try verifier.loadRevocations(signed: Array("garbage".utf8)) }
        // After all of that, version 3 is still in force and still revokes.
        #expect(verifier.revocationVersion == 3)
        #expect(verifier.revokedCount == 1)
    }

    @Test("an older version is refused; the same version is a no-op; a newer one replaces")
    func versions() throws {
        let verifier = try Fixture.verifier()
        let a = UUIDBytes.random(), b = UUIDBytes.random()
        let tokenA = try Fixture.issue(Fixture.claims(id: a))
        let tokenB = try Fixture.issue(Fixture.claims(id: b))
        try verifier.install(list(version: 5, ids: [a]))
        #expect(tokenErrorCode { _ = try verifier.verify(tokenA, at: Fixture.now, for: Fixture.pull) } == .revoked)
        let e = try #require(throws: RevocationError.self) { try verifier.install(list(version: 4, ids: [])) }
        #expect(e.code == .staleVersion)
        #expect(e.reason.contains("older"))
        #expect(try verifier.install(list(version: 5, ids: [a])) == false)
        #expect(throws: RevocationError(.staleVersion, "")) { try verifier.install(list(version: 5, ids: [b])) }
        #expect(tokenErrorCode { _ = try verifier.verify(tokenA, at: Fixture.now, for: Fixture.pull) } == .revoked)
        #expect(tokenErrorCode { _ = try verifier.verify(tokenB, at: Fixture.now, for: Fixture.pull) } == nil)
        #expect(try verifier.install(list(version: 6, ids: [b])))
        #expect(tokenErrorCode { _ = try verifier.verify(tokenA, at: Fixture.now, for: Fixture.pull) } == nil)
        #expect(tokenErrorCode { _ = try verifier.verify(tokenB, at: Fixture.now, for: Fixture.pull) } == .revoked)
    }

    @Test("a failed write leaves nothing behind, and a killed writer's temporary file disturbs nothing")
    func atomicWrite() throws {
        let dir = try temporaryDirectory()
        let path = "\(dir)/revocations.jws"
        // Writing into a missing directory fails cleanly.
        #expect(throws: RevocationError(.io, "")) { try list(version: 1, ids: []).write(to: "\(dir)/missing/revocations.jws", signedWith: key) }
        #expect(try AtomicFile.list(dir) == [])
        try list(version: 1, ids: [.random()]).write(to: path, signedWith: key)
        // A leftover temporary file from a killed writer does not disturb the next write or load.
        _ = FileManager.default.createFile(atPath: "\(dir)/.revocations.jws.tmp-1234", contents: Data("partial".utf8))
        try list(version: 2, ids: []).write(to: path, signedWith: key)
        #expect(try RevocationList.load(path: path, keys: KeyRing(keys: [key])).version == 2)
        // A truncated list (what a non-atomic writer would leave) is refused, not half-loaded.
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: path))
        #expect(throws: RevocationError.self) { try RevocationList.load(path: path, keys: KeyRing(keys: [key])) }
    }

    @Test("100,000 entries: loads, and lookups stay exact")
    func large() throws {
        let ids = (0..<100_000).map { _ in UUIDBytes.random() }
        let big = list(version: 1, ids: ids)
        let signed = try big.signed(with: key)
        let verifier = try Fixture.verifier()
        try verifier.loadRevocations(signed: signed)
        #expect(verifier.revokedCount == 100_000)
        let token = try Fixture.issue(Fixture.claims(id: ids[54_321]))
        #expect(tokenErrorCode { _ = try verifier.verify(token, at: Fixture.now, for: Fixture.pull) } == .revoked)
        #expect(tokenErrorCode { _ = try verifier.verify(try Fixture.issue(Fixture.claims()), at: Fixture.now, for: Fixture.pull) } == nil)
    }
}
