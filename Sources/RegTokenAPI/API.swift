// The service's contract is `openapi.yaml` in this folder. `Generated/` holds what
// swift-openapi-generator 1.14.3 makes from it (`Components`, `Operations`, `APIProtocol` for the
// server, `Client`), with package access: run `scripts/generate-api.sh` after editing the
// document; it also copies the document to `RegTokenAPIDocument` (served at /openapi.yaml) and
// records its SHA-256, which `APIDocumentTests` checks, so a stale generation fails the tests.
