import Foundation
import Testing

@Suite("regtoken command line: concurrent processes and crashes", .serialized)
struct ProcessConcurrencyTests {
    @Test("two processes each adding 100 tokens at once end with 200 distinct tokens listed")
    func twoWriters() throws {
        let cli = try CLI()
        _ = try cli("init")
        let script = "for i in $(seq 1 100); do \"$0\" token-add -q --description \"$1-$i\" || exit 1; done"
        var procs: [Process] = []
        for name in ["a", "b"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-c", script, CLI.binary, name]
            p.environment = cli.environment
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            procs.append(p)
        }
        for p in procs { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        let rows = try cli("token-list", "--output", "json").array()
        #expect(rows.count == 200)
        #expect(Set(rows.compactMap { $0["id"] as? String }).count == 200)
        let descriptions = Set(rows.compactMap { $0["description"] as? String })
        #expect(descriptions.count == 200 && descriptions.contains("a-100") && descriptions.contains("b-1"))
    }

    @Test("adders and removers at once: every removal is revoked, nothing is lost")
    func addersAndRemovers() throws {
        let cli = try CLI()
        let seeded = try (0..<20).map { _ in try cli.add("--readwrite") }
        let adder = Process()
        adder.executableURL = URL(fileURLWithPath: "/bin/bash")
        adder.arguments = ["-c", "for i in $(seq 1 30); do \"$0\" token-add -q >/dev/null || exit 1; done", CLI.binary]
        adder.environment = cli.environment
        try adder.run()
        for t in seeded { #expect(try cli("token-rm", t.id).status == 0) }
        adder.waitUntilExit()
        #expect(adder.terminationStatus == 0)
        let ids = try cli.listIDs()
        #expect(ids.count == 30)
        for t in seeded {
            #expect(!ids.contains(t.id))
            #expect(try cli("verify", t.token).status == 13)
        }
        let list = try cli("revocations", "show", "--output", "json").object()
        #expect((list["entries"] as? [Any])?.count == 20)
    }

    @Test("kill -9 at random moments in loops of token-add and token-rm leaves ledger, keys and revocation list readable and consistent")
    func killed() throws {
        let cli = try CLI()
        var created: [String: String] = [:]  // id -> token, reported as created
        var removable: Set<String> = []       // of those, the ones surely not removed yet
        // How long a command takes here (a first run, then any other), so that kills land
        // anywhere in one; then adapted as the rounds go.
        var clock = ContinuousClock.now
        _ = try cli("token-add", "-q")
        let firstRun = max(0.02, (ContinuousClock.now - clock) / .seconds(1))
        clock = .now
        _ = try cli("token-add", "-q")
        let typical = max(0.02, (ContinuousClock.now - clock) / .seconds(1))
        try FileManager.default.removeItem(atPath: cli.home)
        var kills = 0
        var window = 1.3 * typical
        for round in 0..<40 {
            let add = round % 3 != 2 || removable.isEmpty
            // Victims only among tokens known to be there: a killed token-rm may or may not have
            // removed its own (the final checks cover those), and removing one already gone
            // rightly fails as not found.
            let victims = Array(removable.shuffled().prefix(2))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = add ? ["token-add", "--output", "json"] : ["token-rm"] + victims
            p.environment = cli.environment
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32(Double.random(in: 0...(round == 0 ? firstRun : window)) * 1_000_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            // Killed, or finished successfully: a command that failed on its own is a bug.
            let killed = p.terminationReason == .uncaughtSignal
            #expect(killed || p.terminationStatus == 0, "\(p.arguments ?? []) exited \(p.terminationStatus) on its own")
            // The window follows how long commands take right now (other tests share the CPU):
            // wider after a kill, narrower after a command that finished first.
            if round > 0 { window *= killed ? 1.2 : 0.8 }
            if !add { removable.subtract(victims) }
            if killed { kills += 1; continue }
            if add, let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let id = o["id"] as? String, let token = o["token"] as? String {
                created[id] = token
                removable.insert(id)
            }
            if !add { for id in victims { created.removeValue(forKey: id) } }
        }
        // Both outcomes happened often enough for the checks below to mean something.
        #expect(kills >= 5 && created.count >= 3, "\(kills) of 40 commands killed, \(created.count) tokens left")
        // Everything opens and agrees.
        let list = try cli("token-list", "--output", "json")
        #expect(list.status == 0, "\(list.stderr)")
        let listed = Set(try list.array().compactMap { $0["id"] as? String })
        let revoked = try cli("revocations", "show", "--output", "json")
        #expect(revoked.status == 0, "\(revoked.stderr)")
        let revokedIDs = Set(try #require(try revoked.object()["entries"] as? [[String: Any]]).compactMap { $0["id"] as? String })
        // Every token reported as created is listed, or was removed (and then revoked).
        for (id, token) in created {
            #expect(listed.contains(id) || revokedIDs.contains(id))
            let v = try cli("verify", token)
            #expect(v.status == (listed.contains(id) ? 0 : 13), "\(id): \(v.stderr)")
        }
        // Nothing listed is revoked.
        #expect(listed.isDisjoint(with: revokedIDs))
        // The list file verifies with the exported public keys alone, checked by PyJWT (not by us).
        let jwks = try cli("keys", "export-public")
        #expect(jwks.status == 0)
        let file = cli.home + "/exported.jws"
        #expect(try cli("revocations", "export", "--out", file).status == 0)
        let check = """
            import json, sys, jwt
            keys = jwt.PyJWKSet.from_json(sys.argv[1])
            token = open(sys.argv[2]).read().strip()
            kid = jwt.get_unverified_header(token)["kid"]
            key = next(k for k in keys.keys if k.key_id == kid)
            body = jwt.decode(token, key=key.key, algorithms=["ES256"], options={"verify_exp": False})
            print(body["version"], len(body["revoked"]))
            """
        let py = Process()
        py.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        py.arguments = ["python3", "-c", check, jwks.stdout, file]
        let pyOut = Pipe()
        py.standardOutput = pyOut
        try py.run()
        py.waitUntilExit()
        let pyText = String(decoding: pyOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(py.terminationStatus == 0)
        let shown = try revoked.object()
        #expect(pyText.trimmingCharacters(in: .whitespacesAndNewlines) == "\(shown["version"] ?? "?") \(revokedIDs.count)")
        #expect(try cli("keys", "list").status == 0)
        #expect(try cli("token-add", "-q").status == 0)
    }

    @Test("kill -9 during a first run (key, then active key, then ledger) never leaves a home that cannot be used")
    func killedFirstRun() throws {
        let probe = try CLI()
        let clock = ContinuousClock.now
        _ = try probe("token-add", "-q")
        let firstRun = max(0.02, (ContinuousClock.now - clock) / .seconds(1))
        var kills = 0
        var window = firstRun
        for _ in 0..<20 {
            let cli = try CLI()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = ["token-add", "-q"]
            p.environment = cli.environment
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32(Double.random(in: 0...window) * 1_000_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let killed = p.terminationReason == .uncaughtSignal
            #expect(killed || p.terminationStatus == 0)
            if killed { kills += 1 }
            // Adapt fast: the probe above may have run while other tests loaded the machine.
            window *= killed ? 1.5 : 0.5
            // Whatever the moment, the next command finds a usable home: a key, active, and a ledger.
            let list = try cli("token-list")
            #expect(list.status == 0, "\(list.stderr)")
            let added = try cli("token-add", "-q")
            #expect(added.status == 0, "\(added.stderr)")
            #expect(try cli("verify", added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).status == 0)
        }
        #expect(kills >= 3, "only \(kills) of 20 first runs were killed before they finished")
    }
}
