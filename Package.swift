// swift-tools-version:6.1
import PackageDescription

// One module per concern (see README "Layout"):
// - CRegTokenOpenSSL: the system libcrypto (OpenSSL 3), API pinned to 3.0 with deprecated calls compiled out.
// - CRegTokenFastPath: the measured exceptions in C, one file per concern (HMAC-SHA256 from pad and prefix states,
//   finished by hand; per-thread ECDSA contexts; base64url; the ES256 verified-signature cache); each stays only because a benchmark row
//   shows what it buys (BENCHMARKS.md, "C only where it pays").
// - RegToken: claims, keys, issuer, verifier, revocation list. Pure: no networking, no database.
let package = Package(
    name: "regtoken",
    products: [
        .library(name: "RegToken", targets: ["RegToken"]),
        .library(name: "RegTokenLedger", targets: ["RegTokenLedger"]),
        .library(name: "RegTokenAccess", targets: ["RegTokenAccess"]),
        .library(name: "RegTokenProxy", targets: ["RegTokenProxy", "RegTokenProxyCore"]),
        .library(name: "RegTokenProxyCore", targets: ["RegTokenProxyCore"]),
        .executable(name: "regtoken", targets: ["regtoken"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
        // Documentation only (`swift package generate-documentation`): a plugin, nothing is linked.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRegTokenOpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "CRegTokenFastPath",
            dependencies: ["CRegTokenOpenSSL"]
        ),
        .target(
            name: "RegToken",
            dependencies: [
                "CRegTokenOpenSSL",
                "CRegTokenFastPath",
            ]
        ),
        // The state directory of the command line: config, key ring, ledger (SQLite), revocation list.
        .target(
            name: "RegTokenLedger",
            dependencies: [
                "RegToken",
                "RegTokenAccess",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The proxy's access decision, a pure function: a registry request (method, path, query,
        // Authorization) and a verifier in, allow or deny with a reason out. No networking, so
        // other front ends can embed it and the fuzz targets build without SwiftNIO.
        .target(
            name: "RegTokenAccess",
            dependencies: ["RegToken"]
        ),
        // One proxied connection: the handler and its state machine, the shared decision state,
        // metrics (SwiftNIO, no TLS): what the fuzz target needs, without TLS or HTTP clients.
        .target(
            name: "RegTokenProxyCore",
            dependencies: [
                "RegToken",
                "RegTokenAccess",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // The registry front proxy (SwiftNIO): listener, TLS, reloads, metrics endpoint, around
        // RegTokenProxyCore.
        .target(
            name: "RegTokenProxy",
            dependencies: [
                "RegToken",
                "RegTokenAccess",
                "RegTokenProxyCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The service's contract: openapi.yaml, and the types, server stubs and client that
        // swift-openapi-generator made from it (package access: not public API), committed in
        // Generated/ so that no build compiles the generator (scripts/generate-api.sh).
        .target(
            name: "RegTokenAPI",
            dependencies: [
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ],
            exclude: ["openapi.yaml", "openapi-generator-config.yaml", "Generated/openapi.sha256"]
        ),
        // The same openapi.yaml (a copy: a test checks they are equal) as a resource, served at
        // /openapi.yaml. (The generator's target cannot also hold it as a resource: the bundle
        // accessor's import clashes with the generated code's package imports.)
        .target(name: "RegTokenAPIDocument", resources: [.copy("openapi.yaml")]),
        // regtoken serve: the issuer as an HTTP service (Hummingbird) over a home's ledger and keys.
        .target(
            name: "RegTokenService",
            dependencies: [
                "RegToken",
                "RegTokenLedger",
                "RegTokenAccess",
                "RegTokenProxyCore",
                "RegTokenAPI",
                "RegTokenAPIDocument",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // regtoken loadtest: verification under load, in process or over HTTP against the proxy.
        .target(
            name: "RegTokenLoadTest",
            dependencies: [
                "RegToken",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The command line: thin, one file per subcommand, logic in the libraries.
        .executableTarget(
            name: "regtoken",
            dependencies: [
                "RegToken",
                "RegTokenLedger",
                "RegTokenAccess",
                "RegTokenProxy",
                "RegTokenProxyCore",
                "RegTokenLoadTest",
                "RegTokenService",
                "RegTokenAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Test support: counts the calling thread's heap allocations (interposes malloc in the
        // test executable only).
        .target(name: "CRegTokenMallocCounter", path: "Tests/CRegTokenMallocCounter"),
        .testTarget(
            name: "RegTokenTests",
            dependencies: ["RegToken", "RegTokenLedger", "RegTokenProxy", "RegTokenProxyCore", "CRegTokenMallocCounter"],
            resources: [.copy("Vectors"), .copy("Interop")]
        ),
        .testTarget(
            name: "RegTokenProxyTests",
            dependencies: [
                "RegToken", "RegTokenAccess", "RegTokenProxy", "RegTokenProxyCore", "RegTokenLoadTest", "CRegTokenMallocCounter",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "RegTokenServiceTests", dependencies: ["RegTokenAPIDocument", "RegTokenService"]),
        // Tests that run the built `regtoken` binary as a user would.
        .testTarget(name: "RegTokenCLITests"),
        // regtoken proxy with a real registry (docker-registry) and a real client (skopeo).
        .testTarget(name: "RegTokenE2ETests", dependencies: ["RegToken", "RegTokenAccess"]),
    ]
)
