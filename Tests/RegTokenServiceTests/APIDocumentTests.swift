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
        #expect(Data(APIDocument.yaml) == generatedFrom, "copy Sources/RegTokenAPI/openapi.yaml to Sources/RegTokenAPIDocument/")
    }
}
