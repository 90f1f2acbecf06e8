import Foundation
import Testing

/// Files are trusted only after checks (the second security issue's file items): owner, mode,
/// regular files only, private keys only where they belong, degenerate keys, nothing that can
/// make a command hang. Each test sets the attack up as the review did, through the binary.
@Suite("regtoken: files trusted only after checks", .serialized)
struct FileTrustTests {
    func expectRefused(_ r: CLI.Result, _ containing: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status != 0, "accepted: \(r.stdout)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("regtoken: error: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)", sourceLocation: sourceLocation)
        for c in containing { #expect(r.stderr.contains(c), "missing '\(c)' in: \(r.stderr)", sourceLocation: sourceLocation) }
    }

    func sh(_ script: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "sh: \(script)")
    }

    /// A home made by regtoken, then changed by the test.
    func home() throws -> CLI {
        let cli = try CLI()
        #expect(try cli("init", "--alg", "HS256").status == 0)
        return cli
    }

    @Test("a state directory owned by another user is refused, even by root, and its key never signs")
    func foreignOwner() throws {
        let cli = try home()
        // The attacker's directory: 0700, with the attacker's secret as the active key.
        try sh("chown -R 65534:65534 '\(cli.home)'")
        let r = try cli("token-add")
        expectRefused(r, ["owned by uid 65534", "chown"])
        #expect(try cli("verify", "x.y.z").stderr.contains("owned by uid 65534"))
    }

    @Test("a key directory or key file that others can write is refused; so is a private key readable by others")
    func modes() throws {
        let cli = try home()
        try sh("chmod 777 '\(cli.home)/keys'")
        expectRefused(try cli("token-add"), ["keys", "chmod 700"])
        try sh("chmod 700 '\(cli.home)/keys' && chmod 644 '\(cli.home)'/keys/*.hs256")
        expectRefused(try cli("token-add"), ["readable by group or others", "chmod 600"])
        try sh("chmod 600 '\(cli.home)'/keys/*.hs256 && chmod 666 '\(cli.home)/keys/active'")
        expectRefused(try cli("token-add"), ["writable by group or others", "chmod go-w"])
        try sh("chmod 644 '\(cli.home)/keys/active'")
        #expect(try cli("token-add").status == 0)
    }

    @Test("a <kid>.pub.pem holding a private key is refused: it cannot be activated or sign, and nothing is left that retire cannot remove")
    func misnamedPrivateKey() throws {
        let cli = try home()
        try sh("openssl ecparam -name prime256v1 -genkey -noout -out '\(cli.home)/keys/sneaky.pub.pem' 2>/dev/null && chmod 644 '\(cli.home)/keys/sneaky.pub.pem'")
        expectRefused(try cli("keys", "list"), ["sneaky.pub.pem holds a private key"])
        expectRefused(try cli("keys", "activate", "sneaky"), ["holds a private key"])
        // Even at 0600: a private key is never a .pub.pem.
        try sh("chmod 600 '\(cli.home)/keys/sneaky.pub.pem'")
        expectRefused(try cli("token-add"), ["holds a private key"])
        try sh("rm '\(cli.home)/keys/sneaky.pub.pem'")
        // A private key file readable by others is refused whatever its name.
        try sh("openssl ecparam -name prime256v1 -genkey -noout -out '\(cli.home)/keys/es.pem' 2>/dev/null && chmod 640 '\(cli.home)/keys/es.pem'")
        expectRefused(try cli("keys", "list"), ["es.pem", "chmod 600"])
    }

    @Test("FIFOs, symlinks and devices where keys, the lock and lists belong: refused at once, never a hang")
    func specialFiles() throws {
        let cli = try home()
        let secret = try #require(try FileManager.default.contentsOfDirectory(atPath: cli.home + "/keys").first { $0.hasSuffix(".hs256") })
        try sh("mv '\(cli.home)/keys/\(secret)' '\(cli.home)/saved' && mkfifo -m 600 '\(cli.home)/keys/\(secret)'")
        let started = Date()
        expectRefused(try cli("token-add"), ["not a regular file"])
        #expect(Date().timeIntervalSince(started) < 10)
        try sh("rm '\(cli.home)/keys/\(secret)' && ln -s '\(cli.home)/saved' '\(cli.home)/keys/\(secret)'")
        expectRefused(try cli("token-add"), ["symlink"])
        try sh("rm '\(cli.home)/keys/\(secret)' && mv '\(cli.home)/saved' '\(cli.home)/keys/\(secret)'")
        #expect(try cli("token-add").status == 0)
        // A dangling symlink as the lock is not followed (it would create a file where it points).
        try sh("rm -f '\(cli.home)/lock' && ln -s /tmp/regtoken-lock-target-\(UUID().uuidString) '\(cli.home)/lock'")
        expectRefused(try cli("token-list"), ["lock", "symlink"])
        try sh("rm '\(cli.home)/lock' && mkfifo '\(cli.home)/lock'")
        expectRefused(try cli("token-list"), ["lock", "not a regular file"])
        try sh("rm '\(cli.home)/lock'")
        // The revocation list as a FIFO: verify does not hang on it.
        try sh("rm -f '\(cli.home)/revocations.jws' && mkfifo '\(cli.home)/revocations.jws'")
        let t0 = Date()
        let r = try cli("revocations", "show")
        #expect(r.status != 0 || r.stderr.isEmpty)
        #expect(Date().timeIntervalSince(t0) < 10)
    }

    @Test("a home whose keys/ went missing is not given a new key: the error names what is missing")
    func missingKeys() throws {
        let cli = try home()
        let t = try cli.add()
        try sh("rm -rf '\(cli.home)/keys'")
        expectRefused(try cli("token-list"), ["keys", "restore"])
        #expect(!FileManager.default.fileExists(atPath: cli.home + "/keys"), "a new key directory was made")
        try sh("mkdir -m 700 '\(cli.home)/keys'")
        expectRefused(try cli("token-add"), ["holds no signing key"])
        _ = t
    }

    @Test("degenerate HS256 secrets are refused")
    func degenerateSecret() throws {
        let cli = try home()
        for (name, bytes) in [("zero", [UInt8](repeating: 0, count: 32)), ("same", [UInt8](repeating: 0x41, count: 64)),
                              ("pattern", (0..<32).map { UInt8($0 % 4) })] {
            let path = "\(cli.home)/keys/\(name).hs256"
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
            expectRefused(try cli("keys", "list"), ["\(name).hs256", "degenerate"])
            try FileManager.default.removeItem(atPath: path)
        }
        #expect(try cli("keys", "list").status == 0)
    }
}
