// The service's contract is `openapi.yaml` in this folder. `Generated/` holds what
// swift-openapi-generator 1.14.3 makes from it (`Components`, `Operations`, `APIProtocol` for the
// server, `Client`), with package access: run `scripts/generate-api.sh` after editing the
// document; it also copies the document to `RegTokenAPIDocument` (served at /openapi.yaml) and
// records its SHA-256, which `APIDocumentTests` checks, so a stale generation fails the tests.

extension Components.Schemas.TokenRemoval {
    /// The most ids one removal takes (the document's `maxItems`): the service refuses more, and
    /// the command line says so before sending.
    package static let maximumIDs = 1000
}
