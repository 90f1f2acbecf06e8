import ArgumentParser
import RegToken
import RegTokenLedger

/// `regtoken accounts`: the operator's commands for the accounts `regtoken serve` serves, on the
/// server's home (`--home`).
struct AccountsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounts",
        abstract: "Manage the accounts of regtoken serve (run on the server's home).",
        subcommands: [Add.self, List.self, Remove.self, RotateKey.self])

    /// The `Account` / `API key` lines (or the key alone, or JSON).
    static func printKey(account: String, key: APIKey, json: Bool, quiet: Bool, extra: [(String, String)] = []) throws {
        if json {
            struct Created: Encodable { var account: String; var apiKey: String; var apiKeyId: String }
            return try Output.json(Created(account: account, apiKey: key.text, apiKeyId: key.id))
        }
        if quiet { return Output.line(key.text) }
        Output.pairs([("Account", account), ("API key", key.text)] + extra)
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an account and print its API key (shown once: only its hash is kept).",
            discussion: "The account owns the namespace of its own name unless --namespace says otherwise.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account name (a namespace name: lowercase letters, digits, . _ -).") var name: String
        @Option(name: .customLong("namespace"), help: "A namespace the account owns (repeatable).") var namespaces: [String] = []
        @Flag(name: .short, help: "Print the API key alone.") var quiet = false

        func run() async throws {
            let home = try global.openHome()
            let key = try cli { try home.addAccount(name, namespaces: namespaces, now: Durations.now()) }
            try AccountsCommand.printKey(account: name, key: key, json: global.json, quiet: quiet)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the accounts, their namespaces and API keys (ids only).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let home = try global.openHome()
            let now = Durations.now()
            let accounts = try cli { try home.ledger.accounts(now: now) }
            if global.json {
                struct Key: Encodable { var id: String; var created: String; var expires: String? }
                struct Account: Encodable { var name: String; var namespaces: [String]; var apiKeys: [Key]; var created: String }
                return try Output.json(accounts.map {
                    Account(name: $0.name, namespaces: $0.namespaces,
                            apiKeys: $0.keys.map { Key(id: $0.id, created: Durations.utc($0.createdAt), expires: $0.expiresAt.map(Durations.utc)) },
                            created: Durations.utc($0.createdAt))
                })
            }
            Output.table(["ACCOUNT", "NAMESPACES", "API KEYS", "CREATED"], accounts.map {
                [$0.name, $0.namespaces.joined(separator: ","),
                 $0.keys.map { k in k.expiresAt.map { "\(k.id) (until \(Durations.utc($0)))" } ?? k.id }.joined(separator: " "),
                 Durations.utc($0.createdAt)]
            })
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm",
            abstract: "Remove an account: its API keys stop at once, its tokens are removed and revoked.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account name.") var name: String

        func run() async throws {
            let home = try global.openHome()
            let now = Durations.now()
            let removed = try cli { try home.removeAccount(name, now: now) }
            if global.json {
                struct Done: Encodable { var account: String; var removedTokens: [String] }
                return try Output.json(Done(account: name, removedTokens: removed.map(\.id.description)))
            }
            Output.line("Removed account \(name) and its \(removed.count) token\(removed.count == 1 ? "" : "s") (revoked)")
        }
    }

    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Give an account a new API key; the old one keeps working for the overlap.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account name.") var name: String
        @Option(parsing: .unconditional, help: "How long the old key keeps working (e.g. 24h; 0s stops it at once).") var overlap: String = "24h"
        @Flag(name: .short, help: "Print the API key alone.") var quiet = false

        func run() async throws {
            let seconds: Int64 = try cli {
                let t = overlap.trimmingWhitespace
                if t == "0" || t == "0s" { return 0 }
                return try Durations.parse(t)
            }
            let home = try global.openHome()
            let now = Durations.now()
            let key = try cli { try home.rotateKey(name, overlap: seconds, now: now) }
            try AccountsCommand.printKey(account: name, key: key, json: global.json, quiet: quiet,
                                         extra: [("Old keys", seconds == 0 ? "stopped" : "work until \(Durations.utc(now + seconds))")])
        }
    }
}
