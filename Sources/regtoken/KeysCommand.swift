import ArgumentParser
import Foundation
import RegToken
import RegTokenLedger

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage signing keys.",
        subcommands: [Generate.self, List.self, Activate.self, Retire.self, ExportPublic.self, ExportCert.self, ExportJWKS.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a new key (HS256: 32 random bytes; ES256: a P-256 pair).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "HS256 or ES256.") var alg: Algorithm
        @Flag(help: "Make it the key that signs new tokens.") var activate = false

        func run() async throws {
            let home = try global.openHome()
            let key = try cli { try home.generateKey(alg, activate: activate) }
            let active = try cli { try home.keyRing().activeKeyID == key.id }
            if global.json {
                struct Made: Encodable { var keyId: String; var algorithm: String; var active: Bool }
                return try Output.json(Made(keyId: key.id, algorithm: key.algorithm.rawValue, active: active))
            }
            Output.line("Created key \(key.id) (\(key.algorithm.rawValue))\(active ? ", active" : "")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let home = try global.openHome()
            let ring = try cli { try home.keyRing() }
            let keys = ring.keys.sorted { $0.id < $1.id }
            if global.json {
                struct Key: Encodable { var keyId: String; var algorithm: String; var active: Bool; var canSign: Bool }
                return try Output.json(keys.map { Key(keyId: $0.id, algorithm: $0.algorithm.rawValue, active: $0.id == ring.activeKeyID, canSign: $0.canSign) })
            }
            Output.table(["KEY ID", "ALGORITHM", "ACTIVE", "CAN SIGN"],
                         keys.map { [$0.id, $0.algorithm.rawValue, $0.id == ring.activeKeyID ? "yes" : "no", $0.canSign ? "yes" : "no"] })
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a key the one that signs new tokens and the revocation list.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The key id.") var keyID: String

        func run() async throws {
            let home = try global.openHome()
            try cli {
                try home.activateKey(keyID.trimmingWhitespace)
                try home.syncRevocations(now: Durations.now())
            }
            if !global.json { Output.line("Activated key \(keyID.trimmingWhitespace)") } else {
                struct Done: Encodable { var activated: String }
                try Output.json(Done(activated: keyID.trimmingWhitespace))
            }
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire a key: every token it signed stops verifying at once (a mass revocation).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The key id.") var keyID: String

        func run() async throws {
            let home = try global.openHome()
            let forgotten = try cli { try home.retireKey(keyID.trimmingWhitespace, now: Durations.now()) }
            if global.json {
                struct Done: Encodable { var retired: String; var tokensRemoved: Int }
                return try Output.json(Done(retired: keyID.trimmingWhitespace, tokensRemoved: forgotten))
            }
            Output.line("Retired key \(keyID.trimmingWhitespace); \(forgotten) token(s) it signed were removed from the ledger")
        }
    }

    struct ExportPublic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-public",
            abstract: "Print the public keys as a JWKS (ES256 keys only; HS256 secrets are never exported).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let home = try global.openHome()
            let ring = try cli { try home.keyRing() }
            let jwks = try cli { try ring.jwksJSON() }
            print(jwks, terminator: "")
            if !ring.keys.contains(where: { $0.algorithm == .es256 }) {
                FileHandle.standardError.write(Data("note: the key set is empty: this home has only HS256 keys, whose secrets are never exported; verifiers of HS256 tokens need the secret itself (keys/<kid>.hs256), or make an ES256 key: regtoken keys generate --alg ES256\n".utf8))
            }
        }
    }

    struct ExportCert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-cert",
            abstract: "Write a self-signed certificate of each ES256 signing key, for a registry's auth.token.rootcertbundle.",
            discussion: """
                A stock registry (distribution's auth: token) accepts a registry token whose kid names a key \
                of this bundle (the libtrust fingerprint). Every ES256 key that can sign is in it, so that a \
                rotation needs no new bundle until the old key is retired. Only certificates are written: \
                public data, mode 0644.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "Where to write the PEM bundle; - for standard output.") var out: String
        @Option(help: "The certificates' common name.") var commonName: String = "regtoken"

        func run() async throws {
            let keys = try KeysCommand.registrySigningKeys(global)
            let bundle = try keys.map { key in try cli { try key.selfSignedCertificatePEM(commonName: commonName) } }.joined()
            try KeysCommand.writePublic(bundle, to: out, what: "\(keys.count) certificate(s)", keys: keys)
        }
    }

    struct ExportJWKS: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-jwks",
            abstract: "Write the ES256 signing keys as a JWKS for a registry's auth.token.jwks (distribution 3).",
            discussion: """
                Each key's kid is the one registry tokens carry (the libtrust fingerprint, which is also how \
                distribution 2.8 finds a key of its rootcertbundle), so one header works for both generations. \
                Public data, mode 0644. For regtoken's own verifiers use export-public (kids are key ids there).
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "Where to write the JWKS; - for standard output.") var out: String

        func run() async throws {
            let keys = try KeysCommand.registrySigningKeys(global)
            let jwks = try cli { try KeyRing.registryJWKSJSON(keys) }
            try KeysCommand.writePublic(jwks, to: out, what: "\(keys.count) key(s)", keys: keys)
        }
    }

    /// The keys a token server may sign registry tokens with: every ES256 key that can sign, so
    /// that a rotation needs no new bundle at the registry until the old key is retired.
    static func registrySigningKeys(_ global: GlobalOptions) throws -> [SigningKey] {
        let home = try global.openHome()
        let ring = try cli { try home.keyRing() }
        let keys = ring.keys.filter { $0.algorithm == .es256 && $0.canSign }.sorted { $0.id < $1.id }
        guard !keys.isEmpty else {
            throw CLIError("no ES256 signing key in this home: a registry takes ES256 keys; make one with: regtoken keys generate --alg ES256", exit: .invalidInput)
        }
        return keys
    }

    /// Writes public material (mode 0644) to `out`, or to standard output for `-`.
    static func writePublic(_ text: String, to out: String, what: String, keys: [SigningKey]) throws {
        if out == "-" {
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        do { try AtomicFile.write(Array(text.utf8), to: out, mode: 0o644) } catch {
            throw CLIError("cannot write \(out): \(error)")
        }
        let ids = try keys.map { key in "\(key.id) (kid \(try cli { try key.libtrustKeyID() }))" }
        Output.line("Wrote \(what) to \(out): \(ids.joined(separator: ", "))")
    }
}
