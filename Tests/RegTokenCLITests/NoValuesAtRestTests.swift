import Foundation
import Testing

/// No token values at rest: the ledger keeps claims and the key id; token-get signs again.
@Suite("regtoken: no token values at rest", .serialized)
struct NoValuesAtRestTests {
    /// Every byte of the home's files.
    func homeBytes(_ cli: CLI) throws -> Data {
        var all = Data()
        let files = try FileManager.default.subpathsOfDirectory(atPath: cli.home)
        for f in files {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: cli.home + "/" + f, isDirectory: &isDir), !isDir.boolValue {
                all += (try? Data(contentsOf: URL(fileURLWithPath: cli.home + "/" + f))) ?? Data()
            }
        }
        return all
    }

    @Test("HS256: token-get gives the very bytes token-add printed; no file of the home holds them")
    func hs256() throws {
        let cli = try CLI()
        #expect(try cli("init", "--alg", "HS256").status == 0)
        let t = try cli.add("--readwrite")
        #expect(try cli("token-get", t.id, "-q").out == t.token)
        let bytes = try homeBytes(cli)
        #expect(bytes.range(of: Data(t.token.utf8)) == nil)
        // Nor the signature alone.
        let signature = try #require(t.token.split(separator: ".").last)
        #expect(bytes.range(of: Data(signature.utf8)) == nil)
    }

    @Test("a ledger made before keeps every token, loses their values, and token-get still answers")
    func migration() throws {
        let cli = try CLI()
        #expect(try cli("init", "--alg", "HS256").status == 0)
        let keep = try cli.add("--description", "kept")
        // Rebuild the ledger as the first version wrote it, value included.
        let script = """
            import sqlite3, sys
            path, tid, value = sys.argv[1], sys.argv[2], sys.argv[3]
            c = sqlite3.connect(path)
            row = c.execute("SELECT id, account, region, scope, description, created_at, expires_at, key_id, namespaces FROM token WHERE id = ?", (tid,)).fetchone()
            c.execute("DROP TABLE token")
            c.execute("CREATE TABLE token (id TEXT PRIMARY KEY NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL, scope TEXT NOT NULL, description TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, key_id TEXT NOT NULL, token TEXT NOT NULL, namespaces TEXT)")
            c.execute("INSERT INTO token VALUES (?,?,?,?,?,?,?,?,?,?)", row[:8] + (value,) + row[8:])
            for t in ("api_key", "namespace", "account"):
                c.execute("DROP TABLE " + t)
            c.execute("DELETE FROM meta WHERE key LIKE 'namespaces_%'")
            c.execute("DELETE FROM grdb_migrations WHERE identifier != 'v1'")
            c.commit()
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, cli.home + "/ledger.sqlite", keep.id, keep.token]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(try homeBytes(cli).range(of: Data(keep.token.utf8)) != nil)  // the old ledger holds it
        #expect(try cli.listIDs() == [keep.id])
        #expect(try homeBytes(cli).range(of: Data(keep.token.utf8)) == nil, "the value survived the migration")
        #expect(try cli("token-get", keep.id, "-q").out == keep.token)
        #expect(try cli("verify", keep.token).status == 0)
    }

    @Test("a token whose key was retired no longer exists")
    func retiredKey() throws {
        let cli = try CLI()
        #expect(try cli("init", "--alg", "HS256").status == 0)
        let t = try cli.add()
        let old = try #require(try cli("keys", "list", "--output", "json").array().first?["key_id"] as? String)
        #expect(try cli("keys", "generate", "--alg", "HS256", "--activate").status == 0)
        #expect(try cli("keys", "retire", old).status == 0)
        let r = try cli("token-get", t.id)
        #expect(r.status == 3)
    }
}
