import Foundation
import RegToken
import RegTokenLedger

/// Printing for humans (aligned text) and scripts (JSON with stable snake_case field names).
enum Output {
    static func json<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(value)
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func line(_ s: String) {
        FileHandle.standardOutput.write(Data((s + "\n").utf8))
    }

    /// Two-column "Label   value" lines.
    static func pairs(_ rows: [(String, String)]) {
        let width = (rows.map(\.0.count).max() ?? 0) + 3
        for (k, v) in rows { line(k.padding(toLength: width, withPad: " ", startingAt: 0) + v) }
    }

    /// A table with a header row, columns padded to their widest cell.
    static func table(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) }.joined()
        }
        line(render(header))
        for r in rows { line(render(r)) }
    }

    static func time(_ t: Int64?) -> String { t.map(Durations.utc) ?? "never" }
}

/// A token as `--output json` shows it.
struct TokenJSON: Encodable {
    var id: String
    var token: String?
    var account: String
    var region: String
    var readonly: Bool
    var scope: String
    var description: String
    var created: String
    var expires: String?
    var namespaces: [String]?
    var repositories: [String]?
    var allowFrom: [String]?
    var keyId: String
    var login: String?

    init(_ r: TokenRecord, value: String?, registry: String?) {
        id = r.id.description
        token = value
        account = r.account
        region = r.region
        readonly = r.isReadOnly
        scope = r.scope.rawValue
        description = r.description
        created = Durations.utc(r.createdAt)
        expires = r.expiresAt.map(Durations.utc)
        namespaces = r.namespaces
        repositories = r.repositories?.map(\.description)
        allowFrom = r.allowFrom?.map(\.description)
        keyId = r.keyID
        login = value.flatMap { v in registry.map { Self.loginLine(token: v, registry: $0) } }
    }
}

extension TokenJSON {
    /// How to log in with a token: on standard input, so that it shows in no process list and
    /// docker prints no warning about a password on the command line.
    static func loginLine(token: String, registry: String) -> String {
        "echo '\(token)' | docker login -u token --password-stdin \(registry)"
    }
}

extension IssuedToken {
    /// The token-add / token-get output.
    func printCredentials(json: Bool, registry: String?, quiet: Bool = false) throws {
        if json { return try Output.json(TokenJSON(record, value: value, registry: registry)) }
        if quiet { return Output.line(value) }
        Output.pairs([("Token identifier", record.id.description), ("Token", value)])
        if let registry {
            Output.line("")
            Output.line(TokenJSON.loginLine(token: value, registry: registry))
        }
    }
}
