import Foundation
import Testing
@testable import RegToken

/// Shared fixtures: keys, a fixed clock, and helpers to build tokens byte by byte.
enum Fixture {
    static let now: Int64 = 1_800_000_000
    static let region = "eu-west-1"
    static let account = "acme"

    static func url(_ relative: String) throws -> URL {
        let base = try #require(Bundle.module.resourceURL)
        return base.appendingPathComponent(relative)
    }

    static func data(_ relative: String) throws -> Data {
        try Data(contentsOf: url(relative))
    }

    static func json(_ relative: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: data(relative))
        return try #require(object as? [String: Any])
    }

    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = s.utf8.makeIterator()
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
        while let a = it.next(), let b = it.next() { out.append(v(a) << 4 | v(b)) }
        return out
    }

    static func b64(_ s: String) -> String { Base64URL.encode(Array(s.utf8)) }
    static func b64(_ b: [UInt8]) -> String { Base64URL.encode(b) }

    static let hsKey: SigningKey = { try! SigningKey(id: "hs-test", hmacSecret: Array(repeating: 0x42, count: 32)) }()
    static let esKey: SigningKey = { try! SigningKey.generate(.es256, id: "es-test") }()
    static let otherHS: SigningKey = { try! SigningKey(id: "hs-test", hmacSecret: Array(repeating: 0x43, count: 32)) }()

    static func ring() throws -> KeyRing {
        try KeyRing(keys: [hsKey, esKey], activeKeyID: "hs-test")
    }

    static func verifier(leeway: Int64 = 60) throws -> TokenVerifier {
        TokenVerifier(keys: try ring(), configuration: VerifierConfiguration(leeway: leeway))
    }

    static func claims(
        id: UUIDBytes = .random(), account: String = account, region: String = region, scope: Scope = .pull,
        issuedAt: Int64 = now, expiresAt: Int64? = now + 86_400, namespaces: [String]? = nil
    ) -> TokenClaims {
        TokenClaims(id: id, account: account, region: region, scope: scope, issuedAt: issuedAt,
                    expiresAt: expiresAt, namespaces: namespaces)
    }

    static func issue(_ claims: TokenClaims, with key: SigningKey = hsKey) throws -> String {
        try TokenIssuer(key: key).issue(claims)
    }

    /// A token with exactly these header and claims texts, signed by `key`.
    static func forge(header: String, claims: String, key: SigningKey = hsKey) throws -> String {
        let input = b64(header) + "." + b64(claims)
        return input + "." + b64(try key.signature(for: Array(input.utf8)))
    }

    static func header(_ alg: String = "HS256", kid: String = "hs-test") -> String {
        "{\"alg\":\"\(alg)\",\"kid\":\"\(kid)\",\"typ\":\"JWT\"}"
    }

    static func claimsJSON(jti: String = UUIDBytes.random().description, extra: String = "",
                           iat: String = String(now), exp: String? = String(now + 3600), scope: String = "\"pull\"") -> String {
        var s = "{\"jti\":\"\(jti)\",\"sub\":\"acme\",\"region\":\"\(region)\",\"scope\":\(scope),\"iat\":\(iat)"
        if let exp { s += ",\"exp\":\(exp)" }
        return s + extra + "}"
    }

    static let pull = AccessRequest(region: region, access: .pull)
    static let push = AccessRequest(region: region, access: .push)
}

/// The code of the TokenError thrown by `body`, or nil when it did not throw.
func tokenErrorCode(_ body: () throws -> Void) -> TokenError.ErrorCode? {
    tokenError(body)?.code
}

/// The TokenError thrown by `body`, or nil when it did not throw (another error fails the test).
func tokenError(_ body: () throws -> Void) -> TokenError? {
    do {
        try body()
        return nil
    } catch let error as TokenError {
        return error
    } catch {
        Issue.record("expected a TokenError, got \(error)")
        return nil
    }
}

/// Runs a program; returns exit status and stdout/stderr.
@discardableResult
func run(_ executable: String, _ arguments: [String], input: String? = nil, environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let inPipe = Pipe()
    process.standardInput = inPipe
    try process.run()
    if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
    try inPipe.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// A fresh temporary directory.
func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "regtoken-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func keyError(_ body: () throws -> Void) -> KeyError? {
    do { try body(); return nil } catch let e as KeyError { return e } catch { return nil }
}
