import Foundation
import Testing

/// Runs the built `regtoken` binary, as a user would.
struct CLI {
    let home: String
    var account: String? = "acme"
    var region: String? = "eu-west-1"
    /// More environment variables for every run.
    var extraEnvironment: [String: String] = [:]

    static var binary: String {
        // The test runner lives in the build products directory, beside the regtoken executable.
        let dir = Bundle.main.executableURL?.deletingLastPathComponent().path
            ?? FileManager.default.currentDirectoryPath + "/.build/debug"
        for candidate in [dir + "/regtoken", dir + "/../regtoken", FileManager.default.currentDirectoryPath + "/.build/debug/regtoken"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return dir + "/regtoken"
    }

    init(home: String? = nil) throws {
        if let home {
            self.home = home
        } else {
            self.home = NSTemporaryDirectory() + "regtoken-cli-" + UUID().uuidString
        }
    }

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["REGTOKEN_HOME"] = home
        env.removeValue(forKey: "REGTOKEN_ACCOUNT")
        env.removeValue(forKey: "REGTOKEN_REGION")
        if let account { env["REGTOKEN_ACCOUNT"] = account }
        if let region { env["REGTOKEN_REGION"] = region }
        env.merge(extraEnvironment) { $1 }
        return env
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var out: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }

        func json() throws -> Any { try JSONSerialization.jsonObject(with: Data(stdout.utf8)) }
        func object() throws -> [String: Any] { try #require(try json() as? [String: Any]) }
        func array() throws -> [[String: Any]] { try #require(try json() as? [[String: Any]]) }
    }

    @discardableResult
    func callAsFunction(_ args: String..., input: String? = nil) throws -> Result {
        try run(args, input: input)
    }

    func run(_ args: [String], input: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        p.environment = environment
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try inp.fileHandleForWriting.close()
        // Read both pipes concurrently so a full pipe never blocks the child.
        final class Box: @unchecked Sendable { var data = Data() }  // written before the semaphore signals
        let errBox = Box()
        let errDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            errDone.signal()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        errDone.wait()
        let errData = errBox.data
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    /// token-add and the new token's id and value.
    func add(_ args: String...) throws -> (id: String, token: String) {
        let r = try run(["token-add", "--output", "json"] + args)
        #expect(r.status == 0, "token-add \(args): \(r.stderr)")
        let o = try r.object()
        return (try #require(o["id"] as? String), try #require(o["token"] as? String))
    }

    func listIDs() throws -> [String] {
        let r = try run(["token-list", "--output", "json"])
        #expect(r.status == 0, "token-list: \(r.stderr)")
        return try r.array().compactMap { $0["id"] as? String }
    }
}
