import ArgumentParser
import Foundation
import RegToken
import RegTokenAccess
import RegTokenLedger
import RegTokenLoadTest
import RegTokenProxy

/// The documented exit codes (README.md, `regtoken --help`). Usage errors are ArgumentParser's
/// `ExitCode.validationFailure` (64) and come only from parsing the command line.
extension ExitCode {
    /// Invalid input: a bad duration, name or URL, a missing account or region.
    static let invalidInput = ExitCode(2)
    /// An unknown token id, key id or account.
    static let notFound = ExitCode(3)
    /// `verify`: malformed token (including an unsupported `alg`).
    static let malformedToken = ExitCode(10)
    /// `verify`: bad signature, unknown key, or an algorithm not the key's.
    static let badSignature = ExitCode(11)
    /// `verify`: expired or not yet valid.
    static let expiredToken = ExitCode(12)
    /// `verify`: revoked.
    static let revokedToken = ExitCode(13)
    /// `verify`: not allowed (region, scope, namespace).
    static let notAllowed = ExitCode(14)
}

/// A command-line failure: one line on stderr and a documented exit code. Every error a command
/// throws becomes one (``init(_:)-(any Error)``), so none is ever reported as a usage error.
struct CLIError: Error {
    let message: String
    let exitCode: ExitCode

    init(_ message: String, exit: ExitCode = .failure) {
        self.message = message
        self.exitCode = exit
    }

    /// The one mapping from the libraries' errors to exit codes.
    init(_ error: any Error) {
        switch error {
        case let e as CLIError:
            self = e
        case let e as LedgerError:
            self.init(e.reason, exit: e.code == .notFound ? .notFound : e.code == .invalidInput ? .invalidInput : .failure)
        case let e as IssueError:
            self.init(e.reason, exit: e.code == .invalidClaims ? .invalidInput : .failure)
        case let e as TokenError:
            self.init("token refused: \(e.code): \(e.reason)", exit: Self.exit(for: e.code))
        case let e as LoadTestError:
            self.init(e.reason, exit: e.code == .invalidMix ? .invalidInput : .failure)
        case let e as KeyError: self.init(e.reason)
        case let e as RevocationError: self.init(e.reason)
        case let e as FileError: self.init(e.reason)
        case let e as NamespaceMapError: self.init(e.reason)
        case let e as ProxyError: self.init(e.reason)
        default:
            // Whatever else (a system or library error): one line, exit 1.
            let line = "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "failed"
            self.init(line)
        }
    }

    /// The exit code of a token verification failure.
    static func exit(for code: TokenError.ErrorCode) -> ExitCode {
        switch code {
        case .malformed, .unsupportedAlgorithm: return .malformedToken
        case .badSignature, .unknownKey, .algorithmMismatch: return .badSignature
        case .expired, .notYetValid: return .expiredToken
        case .revoked: return .revokedToken
        default: return .notAllowed
        }
    }

    func report() {
        FileHandle.standardError.write(Data("regtoken: error: \(LogText.escape(message))\n".utf8))
    }
}

/// Runs `body`, turning library errors into one-line CLI errors (``CLIError/init(_:)-(any Error)``).
func cli<T>(_ body: () throws -> T) throws(CLIError) -> T {
    do {
        return try body()
    } catch {
        throw CLIError(error)
    }
}

/// A `--leeway` value: a duration such as `60s` or `2m`, 0s to ``VerifierConfiguration/maximumLeeway``.
func leewaySeconds(_ text: String) throws(CLIError) -> Int64 {
    let seconds = try cli { try Durations.parse(text, allowZero: true) }
    guard seconds <= VerifierConfiguration.maximumLeeway else {
        throw CLIError("--leeway \(text.prefix(40)) is too long: at most \(VerifierConfiguration.maximumLeeway / 60)m (10 minutes)", exit: .invalidInput)
    }
    return seconds
}

/// The address ranges of a repeatable CIDR flag (`--allow-from`, `--trusted-proxy`), each checked:
/// one that is not a range is refused with what is wrong with it (host bits set: "did you mean").
func addressRanges(_ texts: [String], flag: String) throws(CLIError) -> [AddressRange] {
    var ranges: [AddressRange] = []
    for text in texts {
        guard let range = AddressRange(text) else {
            throw CLIError("\(flag) '\(text.prefix(64))' \(AddressRange.problem(text) ?? "is not an address range")", exit: .invalidInput)
        }
        ranges.append(range)
    }
    return ranges
}
