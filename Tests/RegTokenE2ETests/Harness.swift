import Foundation
import Testing

/// The end-to-end harness: a real registry (Debian's docker-registry), a real client (skopeo),
/// and the built `regtoken` binary, all on 127.0.0.1.
enum Harness {
    /// Tests/e2e, beside this file's folder.
    static let scripts: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("e2e").path
    }()

    static var binary: String {
        let dir = Bundle.main.executableURL?.deletingLastPathComponent().path ?? ".build/debug"
        for c in [dir + "/regtoken", dir + "/../regtoken", FileManager.default.currentDirectoryPath + "/.build/debug/regtoken"]
        where FileManager.default.isExecutableFile(atPath: c) { return c }
        return dir + "/regtoken"
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(fd, $0, len) }
        }
        withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    static func waitForPort(_ port: Int, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if canConnect(port) { return true }
            usleep(50_000)
        }
        return false
    }

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
        var out: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// Runs a program to completion.
    @discardableResult
    static func run(_ executable: String, _ args: [String], env: [String: String] = [:], input: String? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-out-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: dir.path + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: dir.path + ".err", contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.path + ".out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.path + ".err"))
        p.standardOutput = out
        p.standardError = err
        let inPipe = Pipe()
        p.standardInput = inPipe
        try p.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        p.waitUntilExit()
        try out.close()
        try err.close()
        let o = (try? String(contentsOfFile: dir.path + ".out", encoding: .utf8)) ?? ""
        let e = (try? String(contentsOfFile: dir.path + ".err", encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: dir.path + ".out")
        try? FileManager.default.removeItem(atPath: dir.path + ".err")
        return Output(status: p.terminationStatus, stdout: o, stderr: e)
    }

    static func bash(_ script: String, _ args: [String] = [], env: [String: String] = [:]) throws -> Output {
        try run("/bin/bash", ["-c", script, "bash"] + args, env: env)
    }

    /// A new directory holding `cert.pem`, a self-signed P-256 certificate for 127.0.0.1 (its
    /// address in subjectAltName), and its key `key.pem` (0600); returns the directory.
    static func loopbackCertificate(_ name: String) throws -> String {
        let dir = try tempDir(name)
        let made = try bash("""
            cd "$1" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem \\
              -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 2>/dev/null && chmod 600 key.pem
            """, [dir])
        guard made.status == 0 else { throw HarnessError("openssl: \(made.stderr)") }
        return dir
    }

    static func tempDir(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "regtoken-e2e-\(name)-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// A docker-registry on 127.0.0.1, storage in a temporary directory.
final class Registry {
    let port: Int
    let dir: String

    /// - Parameter logLevel: the registry's log level; at `info` it logs every request it serves.
    /// - Parameter tls: a PEM certificate and key: the registry serves HTTPS.
    /// - Parameter tokenAuth: distribution's `auth: token`: the realm, service, issuer and the
    ///   PEM bundle of certificates whose keys sign the registry tokens it accepts.
    init(relativeURLs: Bool = false, logLevel: String? = nil, tls: (certificate: String, key: String)? = nil,
         tokenAuth: (realm: String, service: String, issuer: String, certificates: String)? = nil) throws {
        port = Harness.freePort()
        dir = try Harness.tempDir("registry")
        var env: [String: String] = [:]
        if let tokenAuth {
            env["E2E_REGISTRY_TOKEN_REALM"] = tokenAuth.realm
            env["E2E_REGISTRY_TOKEN_SERVICE"] = tokenAuth.service
            env["E2E_REGISTRY_TOKEN_ISSUER"] = tokenAuth.issuer
            env["E2E_REGISTRY_TOKEN_CERTS"] = tokenAuth.certificates
        }
        if let tls { env["E2E_REGISTRY_TLS_CERT"] = tls.certificate; env["E2E_REGISTRY_TLS_KEY"] = tls.key }
        if relativeURLs { env["E2E_REGISTRY_RELATIVE_URLS"] = "true" }
        if let logLevel { env["E2E_REGISTRY_LOGLEVEL"] = logLevel }
        let r = try Harness.run("/bin/bash", ["\(Harness.scripts)/registry.sh", "start", String(port), dir], env: env)
        guard r.status == 0 else { throw HarnessError("registry did not start: \(r.stderr)") }
    }

    func stop() {
        _ = try? Harness.run("/bin/bash", ["\(Harness.scripts)/registry.sh", "stop", String(port), dir])
    }

    func start() throws {
        let r = try Harness.run("/bin/bash", ["\(Harness.scripts)/registry.sh", "start", String(port), dir])
        guard r.status == 0 else { throw HarnessError("registry did not restart: \(r.stderr)") }
    }

    deinit {
        stop()
        // A test's registry may hold a gigabyte of layers.
        try? FileManager.default.removeItem(atPath: dir)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A `regtoken` state directory with account acme in region eu-west-1.
struct Issuer {
    let home: String
    init() throws {
        home = try Harness.tempDir("home") + "/home"
        let r = try Harness.run(Harness.binary, ["init"], env: env)
        guard r.status == 0 else { throw HarnessError("regtoken init failed: \(r.stderr)") }
    }

    var env: [String: String] { ["REGTOKEN_HOME": home, "REGTOKEN_ACCOUNT": "acme", "REGTOKEN_REGION": "eu-west-1"] }

    @discardableResult
    func callAsFunction(_ args: String...) throws -> Harness.Output {
        try Harness.run(Harness.binary, args, env: env)
    }

    func token(_ args: String...) throws -> (id: String, token: String) {
        let r = try Harness.run(Harness.binary, ["token-add", "--output", "json"] + args, env: env)
        guard r.status == 0, let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
              let id = o["id"] as? String, let token = o["token"] as? String else {
            throw HarnessError("token-add failed: \(r.stderr)")
        }
        return (id, token)
    }
}

/// `regtoken proxy`, running in the background, its log in a file.
final class ProxyProcess {
    let port: Int
    let log: String
    private let process: Spawned

    init(upstream: Int, args: [String], port: Int? = nil, env: [String: String] = [:], waitReady: Bool = true) throws {
        self.port = port ?? Harness.freePort()
        log = try Harness.tempDir("proxy") + "/proxy.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        // A home of its own unless the test gives one: the proxy keeps state there (the revocation
        // list versions it accepted, by source), and a source's URL names a port a later run may
        // get again.
        var env = env
        if env["REGTOKEN_HOME"] == nil && !args.contains("--home") { env["REGTOKEN_HOME"] = try Harness.tempDir("proxy-home") }
        process = try Spawned([Harness.binary, "proxy", "--listen", "127.0.0.1:\(self.port)", "--upstream", "http://127.0.0.1:\(upstream)",
                               "--region", "eu-west-1"] + args, environment: env, log: log)
        if waitReady {
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && !Harness.canConnect(self.port) && Date() < deadline { usleep(50_000) }
            if !process.isRunning || !Harness.canConnect(self.port) {
                process.stop()
                throw HarnessError("proxy did not start: \(logText)")
            }
        }
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    var pid: Int32 { process.pid }

    var isRunning: Bool { process.isRunning }

    /// The exit status once the proxy ended.
    var exitStatus: Int32? { process.exitStatus }

    /// Peak resident memory (VmHWM) in KiB.
    var peakRSSKiB: Int? { Harness.peakRSSKiB(pid) }

    func signal(_ sig: Int32) { process.signal(sig) }

    func stop() { process.stop() }
}

extension Harness {
    /// Peak resident memory (VmHWM) of a process in KiB.
    static func peakRSSKiB(_ pid: Int32) -> Int? { statusField(pid, "VmHWM:") }
    /// Resident memory now (VmRSS) in KiB.
    static func rssKiB(_ pid: Int32) -> Int? { statusField(pid, "VmRSS:") }

    static func statusField(_ pid: Int32, _ field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
}

/// skopeo with a private blob-info cache (see Tests/e2e/lib.sh).
struct Skopeo {
    let cache: String
    init() throws { cache = try Harness.tempDir("bic") }

    @discardableResult
    func callAsFunction(_ args: [String]) throws -> Harness.Output {
        try Harness.bash(". \"\(Harness.scripts)/lib.sh\"; skopeo_iso \"$@\"", args, env: ["E2E_BIC": cache])
    }
}

extension Skopeo {
    /// An OCI image made by `make-image.sh`, tagged v1, in a new directory.
    static func makeImage() throws -> String {
        let image = try Harness.tempDir("img")
        let made = try Harness.run("/bin/bash", ["\(Harness.scripts)/make-image.sh", image, "v1"])
        guard made.status == 0 else { throw HarnessError("make-image.sh failed: \(made.stderr)") }
        return image
    }

    /// Copies `oci:<image>:v1` to `<repo>:v1` at the plain-HTTP registry (or proxy) on `port`,
    /// logged in as user `token`.
    func push(_ image: String, port: Int, _ repo: String, token: String) throws -> Harness.Output {
        try self(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", "token:\(token)", "oci:\(image):v1", "docker://127.0.0.1:\(port)/\(repo):v1"])
    }

    /// Inspects `<repo>:v1` at the plain-HTTP registry (or proxy) on `port`, logged in as user `token`.
    func inspect(port: Int, _ repo: String, token: String) throws -> Harness.Output {
        try self(["inspect", "--tls-verify=false", "--creds", "token:\(token)", "docker://127.0.0.1:\(port)/\(repo):v1"])
    }
}

/// curl, returning status code and body.
func curl(_ args: [String]) throws -> (status: Int, body: String, headers: String) {
    let dir = try Harness.tempDir("curl")
    let r = try Harness.run("/usr/bin/curl", ["-s", "-o", "\(dir)/body", "-D", "\(dir)/headers", "-w", "%{http_code}", "--max-time", "20"] + args)
    let body = (try? String(contentsOfFile: "\(dir)/body", encoding: .utf8)) ?? ""
    let headers = (try? String(contentsOfFile: "\(dir)/headers", encoding: .utf8)) ?? ""
    return (Int(r.out) ?? 0, body, headers)
}

func basicAuth(_ token: String) -> String {
    "Authorization: Basic " + Data("token:\(token)".utf8).base64EncodedString()
}

/// Polls `condition` until it holds or `seconds` pass (a last check at the end).
func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}
