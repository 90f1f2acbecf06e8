import FoundationEssentials
import RegToken

/// Defaults saved in the state directory with `regtoken config set`: account, region, and the
/// registry host of each region (for the `docker login` line).
public struct HomeConfig: Codable, Sendable, Equatable {
    public var account: String?
    public var region: String?
    public var registries: [String: String]
    /// `regtoken login`: the service's URL, its API key (a secret: the file is 0600 and
    /// refused otherwise) and the CA certificates to trust for it.
    public var server: String?
    public var apiKey: String?
    public var serverCA: String?

    enum CodingKeys: String, CodingKey {
        case account, region, registries, server
        case apiKey = "api_key"
        case serverCA = "server_ca"
    }

    public init(account: String? = nil, region: String? = nil, registries: [String: String] = [:]) {
        self.account = account
        self.region = region
        self.registries = registries
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        account = try c.decodeIfPresent(String.self, forKey: .account)
        region = try c.decodeIfPresent(String.self, forKey: .region)
        registries = try c.decodeIfPresent([String: String].self, forKey: .registries) ?? [:]
        server = try c.decodeIfPresent(String.self, forKey: .server)
        apiKey = try c.decodeIfPresent(String.self, forKey: .apiKey)
        serverCA = try c.decodeIfPresent(String.self, forKey: .serverCA)
    }

    /// The config of the home at `home` without opening the home (nothing is created): empty
    /// when there is none. The command line reads it to know whether it is logged in to a service.
    public static func peek(home: String) throws(LedgerError) -> HomeConfig {
        try load(home + "/config.json")
    }

    /// Writes the config of the home at `home` (created 0700 if missing) without opening the
    /// home: `regtoken login` on a machine that never issues tokens itself.
    public static func write(_ config: HomeConfig, home: String) throws(LedgerError) {
        do { try AtomicFile.makeDirectory(home, mode: 0o700) } catch {
            throw LedgerError(.storage, "cannot create \(home): \(error)")
        }
        try config.save(home + "/config.json")
    }

    static func load(_ path: String) throws(LedgerError) -> HomeConfig {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path, limit: 1 << 20, trust: .secret) } catch {
            if error.code == .notFound { return HomeConfig() }
            throw LedgerError(.storage, "cannot read \(path): \(error)")
        }
        do {
            return try JSONDecoder().decode(HomeConfig.self, from: Data(bytes))
        } catch {
            throw LedgerError(.storage, "\(path) is not valid regtoken config JSON; fix or delete it and set values again with regtoken config set")
        }
    }

    func save(_ path: String) throws(LedgerError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            let data = try encoder.encode(self)
            try AtomicFile.write(Array(data) + [0x0A], to: path, mode: 0o600)
        } catch {
            throw LedgerError(.storage, "cannot write \(path): \(error)")
        }
    }
}
