import ArgumentParser
import Foundation
import RegToken
import RegTokenLedger

struct RevocationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revocations",
        abstract: "Show or export the signed revocation list.",
        subcommands: [Show.self, Export.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the revocation list in force.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let home = try global.openHome()
            let list = try cli { try home.revocationFile() }
            if global.json {
                struct Entry: Encodable { var id: String; var expires: String? }
                struct List: Encodable { var version: UInt64; var issued: String; var path: String; var entries: [Entry] }
                return try Output.json(List(version: list.version, issued: Durations.utc(list.issuedAt), path: home.revocationsPath,
                                            entries: list.entries.map { Entry(id: $0.id.description, expires: $0.expiresAt.map(Durations.utc)) }))
            }
            Output.pairs([("Version", String(list.version)), ("Issued", Durations.utc(list.issuedAt)),
                          ("File", home.revocationsPath), ("Revoked", String(list.entries.count))])
            if !list.entries.isEmpty {
                Output.line("")
                Output.table(["TOKEN ID", "EXPIRY"], list.entries.map { [$0.id.description, Output.time($0.expiresAt)] })
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the signed list (for verifiers such as regtoken proxy --revocations) to a file, atomically.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Where to write it.") var out: String

        func run() async throws {
            let home = try global.openHome()
            let list = try cli { try home.revocationFile() }
            let bytes = try cli { try AtomicFile.read(home.revocationsPath, limit: RevocationList.maximumBytes) }
            do {
                try AtomicFile.write(bytes, to: out, mode: 0o644)
            } catch {
                throw CLIError("cannot write \(out): \(error)")
            }
            if global.json {
                struct Done: Encodable { var path: String; var version: UInt64; var entries: Int }
                return try Output.json(Done(path: out, version: list.version, entries: list.entries.count))
            }
            Output.line("Wrote revocation list version \(list.version) (\(list.entries.count) revoked) to \(out)")
        }
    }
}
