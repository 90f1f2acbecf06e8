import Foundation

/// The service's contract, `openapi.yaml` in this folder: swift-openapi-generator makes the
/// `Components`, `Operations`, `APIProtocol` (server) and `Client` types from it at build time.
public enum APIDocument {
    /// The OpenAPI document as it is served at `/openapi.yaml`.
    public static let yaml: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let data = try? Data(contentsOf: url) else { return [] }
        return Array(data)
    }()
}
