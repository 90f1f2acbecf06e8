// swift-tools-version:6.1
// Only for scripts/generate-api.sh: swift-openapi-generator's command line, so that the build
// of regtoken itself never compiles the generator (its code is generated once and committed).
import PackageDescription

let package = Package(
    name: "openapi-generator",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator.git", exact: "1.14.3"),
    ]
)
