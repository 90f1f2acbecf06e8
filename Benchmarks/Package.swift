// swift-tools-version:6.1
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name (lowercased), which is whatever the clone is
// called; the product is named through it.
let regtoken = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

// Verification throughput of regtoken beside jwt-kit 5 and the raw OpenSSL primitives, measured
// in one run with ordo-one/package-benchmark. Its own package, so that users of the library never
// resolve benchmark dependencies. Run: swift package --disable-sandbox benchmark (see BENCHMARKS.md).
let package = Package(
    name: "regtoken-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/ordo-one/package-benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // The yardsticks: OpenSSL's own primitives on the same bytes, independent of regtoken's code.
        .systemLibrary(name: "CBenchLibcrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "CBenchOpenSSL", dependencies: ["CBenchLibcrypto"]),
        .executableTarget(
            name: "Verification",
            dependencies: [
                .product(name: "RegToken", package: regtoken),
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "JWTKit", package: "jwt-kit"),
                "CBenchOpenSSL",
            ],
            path: "Benchmarks/Verification",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // The proxy's request heads: NIOHTTP1's decoder beside the byte-level reader, same bytes.
        .executableTarget(
            name: "RequestHead",
            dependencies: [
                .product(name: "RegTokenProxyCore", package: regtoken),
                .product(name: "RegTokenAccess", package: regtoken),
                .product(name: "RegToken", package: regtoken),
                "CBenchLibcrypto",
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/RequestHead",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
