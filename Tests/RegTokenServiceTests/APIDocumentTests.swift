import Foundation
import RegTokenAPIDocument
@testable import RegTokenService
import Testing

@Suite("The OpenAPI document")
struct APIDocumentTests {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/RegTokenAPI/openapi.yaml")

    @Test("the document served at /openapi.yaml is the one the server and client are generated from")
    func servedIsGenerated() throws {
        let generatedFrom = try Data(contentsOf: Self.source)
        #expect(!APIDocument.yaml.isEmpty)
        #expect(Data(APIDocument.yaml) == generatedFrom, "run scripts/generate-api.sh")
    }

    @Test("the committed generated code was made from this document (its recorded SHA-256)")
    func generatedIsCurrent() throws {
        let recorded = try String(contentsOf: Self.source.deletingLastPathComponent().appendingPathComponent("Generated/openapi.sha256"), encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [Self.source.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        p.waitUntilExit()
        let actual = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ").first.map(String.init)
        #expect(actual == recorded.trimmingCharacters(in: .whitespacesAndNewlines), "openapi.yaml changed: run scripts/generate-api.sh")
    }

    /// The document's operations, read line by line (its layout: `  /path:`, `    method:`, and
    /// the operation's `operationId` and `security` six spaces in). `ownSecurity`: the operation
    /// names its own (`[]`, public; or the token endpoint's registry login) instead of the API key.
    static func operations() throws -> [(path: String, method: String, id: String, ownSecurity: Bool)] {
        let lines = try String(contentsOf: source, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var out: [(path: String, method: String, id: String, ownSecurity: Bool)] = []
        var inPaths = false, path = "", method = ""
        for line in lines {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("#") { continue }
            if !line.isEmpty && !line.hasPrefix(" ") { break }
            if line.hasPrefix("  /") && line.hasSuffix(":") { path = String(line.dropFirst(2).dropLast()); continue }
            if let m = ["get", "post", "put", "patch", "delete"].first(where: { line == "    \($0):" }) { method = m; continue }
            if line.hasPrefix("      operationId: ") { out.append((path, method, String(line.dropFirst("      operationId: ".count)), false)) }
            if line.hasPrefix("      security:"), let last = out.indices.last, out[last].path == path, out[last].method == method { out[last].ownSecurity = true }
        }
        return out
    }

    @Test("the operations that need an API key (the document's default security) are exactly those the service checks one for")
    func authenticatedAsDocumented() throws {
        let operations = try Self.operations()
        // Every operation of the document was read (the line reader stopped at no line before
        // the end of `paths`); a link's operationId is deeper.
        let ids = try String(contentsOf: Self.source, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("      operationId: ") }.count
        #expect(operations.count == ids && ids >= 13)
        #expect(Set(operations.filter { !$0.ownSecurity }.map(\.id)) == authenticatedOperations)
    }

    @Test("the methods the service answers on each path (405 with Allow for others) are the document's")
    func methodsAsDocumented() throws {
        var documented: [String: Set<String>] = [:]
        for op in try Self.operations() {
            // A templated last segment (`/v1/tokens/{id}`) is the service's prefix route `/v1/tokens/`.
            let key = op.path.hasSuffix("}") ? String(op.path[...op.path.lastIndex(of: "/")!]) : op.path
            documented[key, default: []].insert(op.method.uppercased())
        }
        // /openapi.yaml is served beside the API, not part of it.
        let routes = apiMethods.filter { $0.prefix != "/openapi.yaml" }
        #expect(Set(routes.map(\.prefix)) == Set(documented.keys))
        for route in routes {
            #expect(Set(route.allowed.map(\.rawValue)) == documented[route.prefix], "\(route.prefix)")
            #expect(route.exact == !route.prefix.hasSuffix("/"), "\(route.prefix)")
        }
    }
}
