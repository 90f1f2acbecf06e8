import Foundation
import Testing

/// The issuer never trusts a version it did not verify, never traps on one, and a token
/// expired but still inside a verifier's leeway can be removed, and so revoked.
@Suite("regtoken: the issuer's revocation list, hostile versions and the leeway", .serialized)
struct RevocationTrustTests {
    /// Writes a revocation list file made by PyJWT: signed with the home's HS256 key, or unsigned.
    func writeList(_ cli: CLI, version: String, signed: Bool) throws {
        let keys = cli.home + "/keys"
        let kid = try #require(try FileManager.default.contentsOfDirectory(atPath: keys).first { $0.hasSuffix(".hs256") }).dropLast(6)
        let script = """
            import base64, jwt, sys, time
            kid, path, version, signed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
            payload = {"version": version, "iat": int(time.time()), "revoked": []}
            if signed:
                text = jwt.encode(payload, open(path + "/keys/" + kid + ".hs256", "rb").read(), algorithm="HS256",
                                  headers={"kid": kid, "typ": "regtoken-revocations+jwt"})
            else:
                b = lambda s: base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()
                text = b('{"alg":"none","typ":"regtoken-revocations+jwt"}') + "." + b('{"version":%d,"iat":0,"revoked":[]}' % version) + "."
            open(path + "/revocations.jws", "w").write(text + "\\n")
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, String(kid), cli.home, version, signed ? "1" : "0"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    func shownVersion(_ cli: CLI) throws -> Int? {
        let r = try cli("revocations", "show", "--output", "json")
        #expect(r.status == 0, "\(r.stderr)")
        return (try? r.object())?["version"] as? Int
    }

    @Test("a list file claiming version 2^64-1 or 2^63-2, signed or not, never sets the version and never traps", arguments: [
        ("18446744073709551615", false), ("18446744073709551615", true), ("9223372036854775806", true), ("9223372036854775806", false),
    ])
    func hostileVersions(_ version: String, _ signed: Bool) throws {
        let cli = try CLI()
        #expect(try cli("init", "--alg", "HS256").status == 0)
        let t = try cli.add()
        let before = try #require(try shownVersion(cli))
        try writeList(cli, version: version, signed: signed)
        // Every command still works, and the next removal publishes a list from the ledger.
        let added = try cli.add()
        #expect(try cli("token-rm", t.id).status == 0)
        let after = try #require(try shownVersion(cli))
        #expect(after > before && after < 1_000, "version \(after)")
        #expect(try cli("verify", t.token).status == 13)
        #expect(try cli("verify", added.token).status == 0)
        let r = try cli("token-list")
        #expect(r.status == 0 && !r.stderr.contains("overflow") && !r.stderr.contains("Fatal"))
    }

    @Test("a verified list at the largest version: a clear error, not a trap")
    func largestVersion() throws {
        let cli = try CLI()
        #expect(try cli("init", "--alg", "HS256").status == 0)
        try writeList(cli, version: String((1 << 53) - 1), signed: true)
        let r = try cli("token-list")
        #expect(r.status == 1)
        #expect(r.stderr.contains("largest possible version") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test("a damaged version in the ledger is a clear error, never a trap")
    func damagedLedgerVersion() throws {
        let cli = try CLI()
        #expect(try cli("init").status == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE meta SET value=1.8e19 WHERE key='revocation_version'\"); c.commit()",
                       cli.home + "/ledger.sqlite"]
        try p.run()
        p.waitUntilExit()
        let r = try cli("token-list")
        #expect(r.status == 1)
        #expect(r.stderr.contains("revocation list version is damaged") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test("a token past its expiry but inside the leeway can be removed, and is then revoked; it is no longer listed")
    func revocableInsideLeeway() throws {
        let cli = try CLI()
        // A 40 s token: verifiers accept it for 4 s past its expiry (a tenth of its lifetime).
        let t = try cli.add("--expires-in", "40s")
        let keep = try cli.add()
        let exp = try #require(try cli("token-get", t.id, "--output", "json").object()["expires"] as? String)
        let formatter = ISO8601DateFormatter()
        let expiry = try #require(formatter.date(from: exp))
        Thread.sleep(until: expiry.addingTimeInterval(1))
        // verify still accepts it: so it must still be removable.
        #expect(try cli("verify", t.token).status == 0)
        #expect(try cli.listIDs() == [keep.id])
        let rm = try cli("token-rm", t.id)
        #expect(rm.status == 0, "\(rm.stderr)")
        #expect(try cli("verify", t.token).status == 13)
        let shown = try cli("revocations", "show", "--output", "json").object()
        #expect((shown["entries"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [t.id])
    }
}
