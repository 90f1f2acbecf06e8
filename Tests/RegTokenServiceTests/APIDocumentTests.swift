import Foundation
import RegTokenAPIDocument
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
}
