import Foundation
import Testing

/// Every bad input: one line on stderr that says what is wrong and what to do, a non-zero exit,
/// and never a stack trace.
@Suite("regtoken command line: bad input")
struct BadInputTests {
    func expectOneLine(_ r: CLI.Result, status: Int32, containing: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("regtoken: error: "), sourceLocation: sourceLocation)
        for c in containing { #expect(r.stderr.contains(c), "missing '\(c)' in: \(r.stderr)", sourceLocation: sourceLocation) }
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack dump") && !r.stderr.contains("0x"), sourceLocation: sourceLocation)
    }

    @Test("unknown or malformed token ids")
    func unknownID() throws {
        let cli = try CLI()
        expectOneLine(try cli("token-get", "0b4e6a52-6f8e-4c1d-9a51-3f6e2c1d0a99"), status: 3, containing: ["no token", "token-list"])
        expectOneLine(try cli("token-get", "zzz"), status: 2, containing: ["not a token identifier"])
        let t = try cli.add()
        // token-rm with one unknown id removes nothing.
        expectOneLine(try cli("token-rm", t.id, "0b4e6a52-6f8e-4c1d-9a51-3f6e2c1d0a99"), status: 3, containing: ["nothing was removed"])
        #expect(try cli.listIDs() == [t.id])
        // An id pasted with whitespace around it is accepted.
        #expect(try cli("token-get", "  \(t.id)\n").status == 0)
    }

    @Test("bad durations and contradicting flags", arguments: ["5", "5x", "-1h", "0s", "h", "1.5h", "99999d", " "])
    func badDuration(_ d: String) throws {
        let cli = try CLI()
        let r = try cli("token-add", "--expires-in=\(d)")
        #expect(r.status == 2)
        #expect(r.stderr.contains("duration"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test("durations in every unit are accepted")
    func goodDurations() throws {
        let cli = try CLI()
        for d in ["90s", "15m", "1h", "7d", "2w", "1h30m"] {
            #expect(try cli("token-add", "--expires-in", d, "-q").status == 0, "\(d)")
        }
        expectOneLine(try cli("token-add", "--non-expiring", "--expires-in", "1h"), status: 2, containing: ["--non-expiring", "--expires-in"])
    }

    @Test("a missing account or region says how to set it; config set saves defaults")
    func missingAccount() throws {
        var cli = try CLI()
        cli.account = nil
        expectOneLine(try cli("token-add"), status: 2, containing: ["no account", "--account", "REGTOKEN_ACCOUNT", "regtoken config set account"])
        cli.region = nil
        #expect(try cli("config", "set", "account", "acme").status == 0)
        expectOneLine(try cli("token-list"), status: 2, containing: ["no region", "regtoken config set region"])
        #expect(try cli("config", "set", "region", "eu-west-1").status == 0)
        #expect(try cli("token-add", "-q").status == 0)
        #expect(try cli("token-list", "--account", "globex").out.split(separator: "\n").count == 1)
        expectOneLine(try cli("config", "set", "account", "bad name"), status: 2, containing: ["invalid account"])
        expectOneLine(try cli("token-add", "--namespace", "Bad/NS"), status: 2, containing: ["invalid namespace"])
    }

    @Test("tokens: pasted with whitespace (accepted), garbage, from stdin, each with its exit class")
    func verifyInputs() throws {
        let cli = try CLI()
        let t = try cli.add()
        #expect(try cli("verify", "\n  \(t.token) \t\n").status == 0)
        #expect(try cli("verify", "-", input: "\(t.token)\n").status == 0)
        expectOneLine(try cli("verify", "garbage"), status: 10, containing: ["malformed"])
        expectOneLine(try cli("verify", String(t.token.dropLast(2)) + "AA"), status: 11, containing: ["bad_signature"])
        expectOneLine(try cli("verify", t.token, "--region", "us-east-1"), status: 14, containing: ["wrong_region"])
        expectOneLine(try cli("verify", "-", input: ""), status: 10, containing: ["malformed"])
    }

    @Test("usage errors: one line and a pointer to --help, exit 64")
    func usage() throws {
        let cli = try CLI()
        expectOneLine(try cli("token-add", "--bogus"), status: 64, containing: ["--bogus", "--help"])
        expectOneLine(try cli("token-rm"), status: 64, containing: ["--help"])
        expectOneLine(try cli("nonsense"), status: 64, containing: ["--help"])
        expectOneLine(try cli("keys", "generate", "--alg", "RS256"), status: 64, containing: ["--help"])
        for n in ["0", "-1", "9223372036854775807", "many"] {
            expectOneLine(try cli("proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--keys", "/nonexistent", "--max-connections", n),
                          status: 64, containing: ["max-connections"])
        }
        let help = try cli("--help")
        #expect(help.status == 0 && help.stdout.contains("token-add"))
    }

    @Test("failures that are not usage errors never exit 64: each exits with its documented code and ends with one error line")
    func runtimeFailuresAreNotUsageErrors() throws {
        var cli = try CLI()
        _ = try cli.add()
        let keys = cli.home + "/keys"
        // The proxy and serve log a line or two before failing: the last line is the error.
        func expectFailure(_ r: CLI.Result, status: Int32, containing: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status == status, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
            let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.hasPrefix("regtoken: error: ") && last.contains(containing), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
            #expect(!r.stderr.contains("--help") && !r.stderr.contains("Fatal error") && !r.stderr.contains("Backtrac"), sourceLocation: sourceLocation)
        }
        let proxy = ["proxy", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--keys", keys]
        expectFailure(try cli.run(proxy + ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"]), status: 1, containing: "/nonexistent")
        expectFailure(try cli.run(proxy + ["--namespaces", "/nonexistent"]), status: 1, containing: "namespaces")
        expectFailure(try cli.run(["proxy", "--listen", "999.1.1.1:80", "--upstream", "http://127.0.0.1:9", "--keys", keys]), status: 1, containing: "999.1.1.1")
        expectFailure(try cli("serve", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"), status: 1, containing: "/nonexistent")
        // A load test against nothing: a connection failure, not a crash (a promise was leaked here once).
        expectFailure(try cli("loadtest", "--url", "http://127.0.0.1:9", "--duration", "1s"), status: 1, containing: "127.0.0.1:9")
        expectFailure(try cli("loadtest", "--url", "http://127.0.0.1:9", "--mix", "valid=x"), status: 2, containing: "--mix")
        // A service that is not there.
        cli.extraEnvironment = ["REGTOKEN_SERVER": "http://127.0.0.1:9", "REGTOKEN_API_KEY": "rtk_unused"]
        expectFailure(try cli("token-list"), status: 1, containing: "cannot reach the service")
        expectFailure(try cli("token-add"), status: 1, containing: "cannot reach the service")
    }

    @Test("a corrupted or unreadable ledger is reported, not crashed on, and not overwritten")
    func corruptedLedger() throws {
        let cli = try CLI()
        _ = try cli.add()
        let ledger = cli.home + "/ledger.sqlite"
        let garbage = Data(repeating: 0x5A, count: 8192)
        try garbage.write(to: URL(fileURLWithPath: ledger))
        try? FileManager.default.removeItem(atPath: ledger + "-wal")
        try? FileManager.default.removeItem(atPath: ledger + "-shm")
        expectOneLine(try cli("token-list"), status: 1, containing: ["ledger", ledger])
        #expect(try Data(contentsOf: URL(fileURLWithPath: ledger)) == garbage)
        // A ledger that is a directory.
        try FileManager.default.removeItem(atPath: ledger)
        try FileManager.default.createDirectory(atPath: ledger, withIntermediateDirectories: false)
        expectOneLine(try cli("token-list"), status: 1, containing: ["ledger"])
    }

    @Test("an unreadable, insecure or corrupted key is reported with what to do")
    func badKeys() throws {
        let cli = try CLI()
        _ = try cli.add()
        let keys = cli.home + "/keys"
        let pem = try #require(try FileManager.default.contentsOfDirectory(atPath: keys).first { $0.hasSuffix(".pem") })
        chmod("\(keys)/\(pem)", 0o644)
        expectOneLine(try cli("token-add"), status: 1, containing: ["readable by group or others", "chmod 600 \(keys)/\(pem)"])
        chmod("\(keys)/\(pem)", 0o600)
        let original = try Data(contentsOf: URL(fileURLWithPath: "\(keys)/\(pem)"))
        try Data("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n".utf8).write(to: URL(fileURLWithPath: "\(keys)/\(pem)"))
        chmod("\(keys)/\(pem)", 0o600)
        expectOneLine(try cli("token-add"), status: 1, containing: ["cannot load keys", pem])
        try original.write(to: URL(fileURLWithPath: "\(keys)/\(pem)"))
        chmod("\(keys)/\(pem)", 0o600)
        #expect(try cli("token-add", "-q").status == 0)
        chmod(cli.home, 0o755)
        expectOneLine(try cli("token-list"), status: 1, containing: ["chmod 700"])
        chmod(cli.home, 0o700)
    }

    @Test("no active key: an interrupted first run is finished; otherwise the operator picks one")
    func noActiveKey() throws {
        // What a first run killed between writing its key and naming it active leaves behind:
        // a key, no `active` file, no ledger yet.
        let fresh = try CLI()
        _ = try fresh("init")
        try FileManager.default.removeItem(atPath: fresh.home + "/keys/active")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: fresh.home + "/ledger.sqlite" + suffix) }
        #expect(try fresh("token-list").status == 0)
        #expect(FileManager.default.fileExists(atPath: fresh.home + "/keys/active"))
        #expect(try fresh("token-add", "-q").status == 0)

        // A home in use whose `active` file was removed: nothing is guessed, even with one key,
        // but keys list and activate still run.
        let cli = try CLI()
        let first = try cli.add()
        let active = cli.home + "/keys/active"
        try FileManager.default.removeItem(atPath: active)
        #expect(try cli("keys", "list").status == 0)
        #expect(!FileManager.default.fileExists(atPath: active))
        #expect(try cli("verify", first.token).status == 0)
        expectOneLine(try cli("token-add"), status: 1, containing: ["no active signing key", "keys activate"])
        expectOneLine(try cli("token-rm", first.id), status: 1, containing: ["no active signing key", "keys activate"])
        #expect(try cli.listIDs() == [first.id])
        let keys = try cli("keys", "list", "--output", "json").array()
        #expect(keys.count == 1 && keys.allSatisfy { $0["active"] as? Bool == false })
        let kid = try #require(keys.first?["key_id"] as? String)
        #expect(try cli("keys", "activate", kid).status == 0)
        #expect(try cli("token-rm", first.id).status == 0)
        #expect(try cli("verify", first.token).status == 13)
    }
}
