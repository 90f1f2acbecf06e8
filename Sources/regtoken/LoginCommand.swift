import ArgumentParser
import Foundation
import RegTokenLedger

/// `regtoken login URL`: use a `regtoken serve` service for the token commands.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Use a regtoken service: token-add, token-list, token-get and token-rm then go to it.",
        discussion: """
            The API key (from the operator's `regtoken accounts add`) is checked with the service, then \
            kept with the URL in the home's config.json (mode 0600). CI jobs can set REGTOKEN_SERVER \
            and REGTOKEN_API_KEY instead.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The service, http(s)://HOST[:PORT].") var url: String
    @Flag(help: "Read the API key from standard input (else it is asked for on the terminal, not echoed).") var apiKeyStdin = false
    @Option(help: "PEM certificates to trust for the service (default: system roots).") var ca: String?

    func run() async throws {
        let key = try readKey()
        guard !key.isEmpty else { throw CLIError("no API key given", exit: .invalidInput) }
        let remote = try Remote(url: url, apiKey: key, ca: ca)
        let account: (name: String, namespaces: [String])
        do {
            account = try await remote.account()
            await remote.shutdown()
        } catch {
            await remote.shutdown()
            throw error
        }
        let path = Home.resolvePath(explicit: global.home, environment: global.environment)
        var config = try cli { try HomeConfig.peek(home: path) }
        config.server = url
        config.apiKey = key
        config.serverCA = ca.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        try cli { try HomeConfig.write(config, home: path) }
        if global.json {
            struct LoggedIn: Encodable { var server: String; var account: String; var namespaces: [String] }
            return try Output.json(LoggedIn(server: url, account: account.name, namespaces: account.namespaces))
        }
        Output.line("Logged in to \(url) as account \(account.name)")
    }

    private func readKey() throws -> String {
        if apiKeyStdin {
            return (readLine(strippingNewline: true) ?? "").trimmingWhitespace
        }
        guard isatty(STDIN_FILENO) == 1 else {
            throw CLIError("standard input is not a terminal: pass --api-key-stdin and the key on standard input", exit: .invalidInput)
        }
        guard let p = getpass("API key: ") else { return "" }
        return String(cString: p).trimmingWhitespace
    }
}

/// `regtoken logout`: back to local mode.
struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Forget the service and its API key: the token commands work on the local home again.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let path = Home.resolvePath(explicit: global.home, environment: global.environment)
        var config = try cli { try HomeConfig.peek(home: path) }
        guard let server = config.server else {
            Output.line("Not logged in")
            return
        }
        config.server = nil
        config.apiKey = nil
        config.serverCA = nil
        try cli { try HomeConfig.write(config, home: path) }
        Output.line("Logged out of \(server)")
    }
}
