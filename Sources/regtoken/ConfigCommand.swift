import ArgumentParser
import RegToken
import RegTokenLedger

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Save defaults: account, region, and the registry host of a region.",
        subcommands: [Set.self, Show.self])

    enum Name: String, ExpressibleByArgument, CaseIterable {
        case account, region, registry
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set account, region, or registry (the host for the region in force, used for the docker login line).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "account, region or registry.") var name: Name
        @Argument(help: "The value.") var value: String

        func run() async throws {
            let home = try global.openHome()
            let v = value.trimmingWhitespace
            switch name {
            case .account, .region:
                let probe = TokenClaims(account: name == .account ? v : "a", region: name == .region ? v : "r", scope: .pull, issuedAt: 0, expiresAt: nil)
                try cli { try probe.validate() }
                try cli { try home.updateConfig { name == .account ? ($0.account = v) : ($0.region = v) } }
                if !global.json { Output.line("\(name.rawValue) = \(v)") }
            case .registry:
                guard !v.isEmpty, !v.contains(where: { $0.isWhitespace || $0 == "/" && false }) else {
                    throw CLIError("registry host must be non-empty with no spaces (for example registry.example.com:5000)", exit: .invalidInput)
                }
                let region = try global.resolvedRegion(home)
                try cli { try home.updateConfig { $0.registries[region] = v } }
                if !global.json { Output.line("registry for \(region) = \(v)") }
            }
            if global.json { try Output.json(home.config) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the saved defaults.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let home = try global.openHome()
            if global.json { return try Output.json(home.config) }
            var rows = [("Home", home.path), ("Account", home.config.account ?? "(not set)"), ("Region", home.config.region ?? "(not set)")]
            for (region, host) in home.config.registries.sorted(by: { $0.key < $1.key }) { rows.append(("Registry \(region)", host)) }
            Output.pairs(rows)
        }
    }
}

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the state directory with a signing key of the given algorithm (otherwise done on first use, with ES256).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "HS256 or ES256 for the first signing key.") var alg: Algorithm = .es256

    func run() async throws {
        let home = try global.openHome(initialAlgorithm: alg)
        let ring = try cli { try home.keyRing() }
        if global.json {
            struct Done: Encodable { var home: String; var activeKeyId: String?; var algorithm: String? }
            return try Output.json(Done(home: home.path, activeKeyId: ring.activeKeyID, algorithm: ring.activeKey?.algorithm.rawValue))
        }
        Output.line("State directory \(home.path); signing key \(ring.activeKeyID ?? "none") (\(ring.activeKey?.algorithm.rawValue ?? "-"))")
    }
}
