// swift-tools-version:6.1
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name (lowercased), which is whatever the clone is
// called; the products are named through it.
let regtoken = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

// libFuzzer targets for the code that reads untrusted bytes. Its own package so that the library's
// users never build them. Build and run with scripts/fuzz.sh (it passes -sanitize=fuzzer,address);
// each target is an executable whose only entry point is LLVMFuzzerTestOneInput.
let package = Package(
    name: "regtoken-fuzz",
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Fixed keys (the RFC 7515 A.3 ES256 key, a fixed HS256 secret), helpers, and the
        // invariant check every target uses.
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "RegToken", package: regtoken),
                .product(name: "RegTokenAccess", package: regtoken),
            ]
        ),
        .executableTarget(name: "FuzzVerify", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzAuthorization", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzDecision", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzRevocations", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzKeys", dependencies: ["FuzzSupport"]),
        // The byte-level HTTP/1.1 readers beside NIOHTTP1's decoder on the same bytes.
        .executableTarget(
            name: "FuzzHTTP1",
            dependencies: [
                "FuzzSupport",
                .product(name: "RegTokenAccess", package: regtoken),
                .product(name: "RegTokenProxyCore", package: regtoken),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The registry side's codec beside NIOHTTP1's client pipeline on the same bytes.
        .executableTarget(
            name: "FuzzHTTP1Response",
            dependencies: [
                "FuzzSupport",
                .product(name: "RegTokenProxyCore", package: regtoken),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The proxy's request path, raw client bytes in, what the registry would read out
        // (imports RegTokenProxyCore with @testable: fuzz.sh builds with -enable-testing).
        .executableTarget(
            name: "FuzzForwarding",
            dependencies: [
                "FuzzSupport",
                .product(name: "RegTokenProxyCore", package: regtoken),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
