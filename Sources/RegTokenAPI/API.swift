// The service's contract is `openapi.yaml` in this folder: swift-openapi-generator makes the
// `Components`, `Operations`, `APIProtocol` (server) and `Client` types from it at build time,
// with package access (not public API). The document itself is served from
// `RegTokenAPIDocument`, which holds a copy (`Tests/RegTokenServiceTests` checks the two
// are the same bytes: edit this one and copy it there).
