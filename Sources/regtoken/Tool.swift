import ArgumentParser
import Foundation
import RegToken
import RegTokenLedger

/// `regtoken`: issue, list, get and remove registry tokens; manage keys; verify tokens; publish
/// the revocation list.
struct RegTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regtoken",
        abstract: "Issue and verify signed access tokens for a container registry.",
        discussion: """
            State lives in --home DIR, $REGTOKEN_HOME, or ~/.regtoken (created 0700 on first use with a \
            fresh ES256 signing key). Account and region come from --account/--region, \
            $REGTOKEN_ACCOUNT/$REGTOKEN_REGION, or `regtoken config set account|region VALUE`.

            Exit codes: 0 success; 1 failure (state, keys or files unusable); 2 invalid input; \
            3 not found; 64 usage error. verify: 10 malformed, 11 bad signature or unknown key, \
            12 expired or not yet valid, 13 revoked, 14 not allowed (region, scope, namespace).
            """,
        version: "0.1.0",
        subcommands: [
            TokenAddCommand.self, TokenListCommand.self, TokenGetCommand.self, TokenRmCommand.self,
            KeysCommand.self, VerifyCommand.self, RevocationsCommand.self, ConfigCommand.self, InitCommand.self, ProxyCommand.self, LoadtestCommand.self,
            AccountsCommand.self, ServeCommand.self, LoginCommand.self, LogoutCommand.self,
        ]
    )
}

@main
enum Tool {
    static func main() async {
        // Everything regtoken creates is private unless it says otherwise (public keys, the list).
        umask(0o077)
        // Parsing (and each command's validate()) is the only source of usage errors (64).
        var command: any ParsableCommand
        do {
            command = try RegTokenCommand.parseAsRoot()
        } catch {
            let code = RegTokenCommand.exitCode(for: error)
            let message = RegTokenCommand.fullMessage(for: error)
            if code == .success {
                // --help, --version
                print(message)
                exit(0)
            }
            let first = message.split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            let line = first.hasPrefix("Error: ") ? String(first.dropFirst(7)) : first
            FileHandle.standardError.write(Data("regtoken: error: \(LogText.escape(line)) (see regtoken --help)\n".utf8))
            exit(ExitCode.validationFailure.rawValue)
        }
        // Running: every failure is reported through CLIError with its documented code, never as usage.
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch where RegTokenCommand.exitCode(for: error) == .success {
            // --help, and a command with subcommands but no run of its own: its help.
            print(RegTokenCommand.fullMessage(for: error))
            exit(0)
        } catch {
            let failure = CLIError(error)
            failure.report()
            exit(failure.exitCode.rawValue)
        }
    }
}
