import FoundationEssentials
import RegToken

/// Defaults saved in the state directory with `regtoken config set`: account, region, and the
/// registry host of each region (for the `docker login` line).
public struct HomeConfig: Codable, Sendable, Equatable {
    public var account: String?
    public var region: String?
    public var registries: [String: String]

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
    }

    static func load(_ path: String) throws(LedgerError) -> HomeConfig {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path, limit: 1 << 20, trust: .owned) } catch {
            if error.errno == ENOENT_ { return HomeConfig() }
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

#if canImport(Glibc)
import Glibc
let ENOENT_ = ENOENT
#elseif canImport(Musl)
import Musl
let ENOENT_ = ENOENT
#endif
