import ArgumentParser
import Foundation
import RegToken
import RegTokenLedger

struct RevocationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revocations",
        abstract: "Show or export the signed revocation list.",
        subcommands: [Show.self, Export.self, Refresh.self])

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
            // A fresh home's list is version 0, never signed by a revocation: say so rather than
            // show a date of 1970.
            guard list.version > 0 else {
                Output.pairs([("Version", "0 (no token revoked yet)"), ("File", home.revocationsPath), ("Revoked", "0")])
                return
            }
            Output.pairs([("Version", String(list.version)), ("Issued", Durations.utc(list.issuedAt)),
                          ("File", home.revocationsPath), ("Revoked", String(list.entries.count))])
            if !list.entries.isEmpty {
                Output.line("")
                Output.table(["TOKEN ID", "EXPIRY"], list.entries.map { [$0.id.description, Output.time($0.expiresAt)] })
            }
        }
    }

    struct Refresh: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign the list again as a new version (same entries), for verifiers that bound how old its signature may be.",
            discussion: """
                A proxy run with --revocations-max-age refuses non-expiring tokens when the list's \
                signature is older than that, even if nothing was revoked since. Run this from a timer \
                (cron, a systemd timer) at less than half that age, e.g. every 5 minutes for 15m.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(parsing: .unconditional, help: "Only when the list on disk was signed longer ago than this (e.g. 5m).") var ifOlderThan: String?

        func run() async throws {
            let home = try global.openHome()
            let age = try ifOlderThan.map { text in try cli { try Durations.parse(text) } }
            let now = Durations.now()
            let renewed = try cli { try home.refreshRevocations(now: now, olderThan: age) }
            let list = try cli { try home.revocationFile() }
            if global.json {
                struct Done: Encodable { var renewed: Bool; var version: UInt64; var issued: String }
                return try Output.json(Done(renewed: renewed, version: list.version, issued: Durations.utc(list.issuedAt)))
            }
            Output.line(renewed ? "Signed revocation list version \(list.version) at \(Durations.utc(list.issuedAt))"
                                : "Revocation list version \(list.version) was signed at \(Durations.utc(list.issuedAt)); nothing to do")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the signed list (for verifiers such as regtoken proxy --revocations) to a file, atomically.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Where to write it; - for standard output (the list alone).") var out: String

        func run() async throws {
            let home = try global.openHome()
            let list = try cli { try home.revocationFile() }
            let bytes = try cli { try AtomicFile.read(home.revocationsPath, limit: RevocationList.maximumBytes) }
            if out == "-" {
                FileHandle.standardOutput.write(Data(bytes))
                return
            }
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
