import ArgumentParser
import Foundation
import RegToken
import RegTokenAccess
import RegTokenLedger

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a token with the keys and revocation list of the state directory.",
        discussion: """
            The answer is the proxy's for the same request (the same code decides): with --namespace, \
            the namespace must be the token's account's (by name, or as --namespaces FILE says, as for \
            the proxy) and in the token's namespace list if it has one. \
            Exit codes: 0 valid; 10 malformed; 11 bad signature or unknown key; 12 expired or not yet valid; \
            13 revoked; 14 not allowed (wrong region, pull-only token, namespace, delete, repository rules, address). \
            A token with repository rules is checked against --repository; one limited to addresses needs --from \
            (without it the address is unknown, and such a token is refused, as the proxy would).
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The token, or - to read it from standard input. Surrounding whitespace is ignored.")
    var token: String

    @Option(help: "What to check the token for: pull, push or delete.")
    var access: Access = .pull

    @Option(help: "A namespace the token must be valid for.")
    var namespace: String?

    @Option(help: "A repository the token must be valid for (its first segment is the namespace): checks the token's repository rules.")
    var repository: String?

    @Option(help: "The client address the token is used from (IPv4 or IPv6), for a token limited with --allow-from.")
    var from: String?

    @Option(help: "The proxy's namespaces file (namespace account per line); without it a namespace belongs to the account of its name.")
    var namespaces: String?

    @Option(parsing: .unconditional, help: "Clock leeway for expiry and issue time, 0s to 10m (past expiry never more than a tenth of the token's lifetime).")
    var leeway: String = "60s"

    func run() async throws {
        var text = token
        if token == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard data.count <= 1 << 20 else { throw CLIError("the token on standard input is larger than 1 MiB", exit: .malformedToken) }
            text = String(decoding: data, as: UTF8.self)
        }
        text = text.trimmingWhitespace
        let client = try from.map { text in
            guard let address = IPAddress(text) else { throw CLIError("--from '\(text.prefix(64))' is not an IPv4 or IPv6 address", exit: .invalidInput) }
            return address
        }
        if let repository, let namespace, !repository.hasPrefix(namespace + "/") {
            throw CLIError("--repository \(repository.prefix(128)) is not in --namespace \(namespace.prefix(64)): give one of them", exit: .invalidInput)
        }
        let (home, _, region) = try global.openHome(needing: .region)
        let verifier = TokenVerifier(keys: try cli { try home.keyRing() }, configuration: VerifierConfiguration(leeway: try leewaySeconds(leeway)))
        _ = try cli { try verifier.install(home.revocationFile()) }
        let now = Durations.now()
        let map = try namespaces.map { path in try cli { try NamespaceMap.load(path: path) } } ?? .accountNamed
        if case .deny(let denied) = AccessPolicy(region: region, namespaces: map)
            .decide(token: Array(text.utf8), access: access, namespace: namespace, repository: repository, client: client, verifier: verifier, now: now) {
            if global.json {
                struct Invalid: Encodable { var valid = false; var code: String; var reason: String }
                try Output.json(Invalid(code: denied.reason.rawValue, reason: denied.message))
            }
            throw CLIError("token refused: \(denied.reason.rawValue): \(denied.message)", exit: Self.exitCode(for: denied.reason))
        }
        do {
            // Allowed: the same verification again, for the claims to show.
            let v = try verifier.verify(text, at: now, for: AccessRequest(region: region, access: access,
                                                                          namespace: namespace ?? repository.map { String($0.prefix { $0 != "/" }) },
                                                                          repository: repository, clientAddress: client))
            let claims = try TokenClaims(json: Self.claimsJSON(text))
            if global.json {
                struct Valid: Encodable {
                    var valid = true
                    var id: String, account: String, region: String, scope: String, readonly: Bool
                    var issued: String, expires: String?, keyId: String, algorithm: String, namespaces: [String]?
                    var repositories: [String]?, allowFrom: [String]?
                }
                return try Output.json(Valid(id: v.id.description, account: v.account.string, region: v.region.string,
                                             scope: v.scope.rawValue, readonly: v.scope.isReadOnly, issued: Durations.utc(v.issuedAt),
                                             expires: v.expiresAt.map(Durations.utc), keyId: v.keyID.string,
                                             algorithm: v.algorithm.rawValue, namespaces: claims.namespaces,
                                             repositories: claims.repositories?.map(\.description), allowFrom: claims.allowFrom?.map(\.description)))
            }
            Output.pairs([
                ("Token identifier", v.id.description), ("Account", v.account.string), ("Region", v.region.string),
                ("Scope", v.scope.isReadOnly ? "pull (read-only)" : "push, pull (read-write)"),
                ("Issued", Durations.utc(v.issuedAt)), ("Expires", Output.time(v.expiresAt)),
                ("Key", "\(v.keyID) (\(v.algorithm.rawValue))"),
                ("Namespaces", claims.namespaces?.joined(separator: ", ") ?? "all of the account's"),
                ("Repositories", claims.repositories?.map(\.description).joined(separator: " ") ?? "all in those namespaces"),
                ("Allowed from", claims.allowFrom?.map(\.description).joined(separator: ", ") ?? "anywhere"),
            ])
        } catch let error as TokenError {
            if global.json {
                struct Invalid: Encodable { var valid = false; var code: String; var reason: String }
                try Output.json(Invalid(code: error.code.description, reason: error.reason))
            }
            throw CLIError(error)
        }
    }

    /// The documented exit code of a refusal.
    static func exitCode(for reason: DenyReason) -> ExitCode {
        switch reason {
        case .malformed, .unsupportedAlgorithm, .badCredentials, .missingCredentials: return .malformedToken
        case .badSignature, .unknownKey, .algorithmMismatch: return .badSignature
        case .expired, .notYetValid: return .expiredToken
        case .revoked: return .revokedToken
        case .invalidName: return .invalidInput
        default: return .notAllowed
        }
    }

    /// The decoded claims segment of a token that has already verified.
    static func claimsJSON(_ token: String) -> [UInt8] {
        JWS.unverifiedPayload(Array(token.utf8)) ?? []
    }
}

extension Access: ExpressibleByArgument {}
extension Algorithm: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}
