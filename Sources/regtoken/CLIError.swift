import Foundation
import RegToken
import RegTokenLedger

/// A command-line failure: one line on stderr, a documented exit code.
struct CLIError: Error {
    enum Exit: Int32 {
        case failure = 1
        case invalidInput = 2
        case notFound = 3
        case malformed = 10
        case badSignature = 11
        case expired = 12
        case revoked = 13
        case notAllowed = 14
    }

    let message: String
    let exit: Exit

    init(_ message: String, exit: Exit = .failure) {
        self.message = message
        self.exit = exit
    }

    init(_ error: LedgerError) {
        switch error.kind {
        case .notFound: self.init(error.message, exit: .notFound)
        case .invalidInput: self.init(error.message, exit: .invalidInput)
        case .storage: self.init(error.message, exit: .failure)
        }
    }

    /// The exit class of a token verification failure.
    static func exit(for code: TokenError.Code) -> Exit {
        switch code {
        case .malformed, .unsupportedAlgorithm: return .malformed
        case .badSignature, .unknownKey, .algorithmMismatch: return .badSignature
        case .expired, .notYetValid: return .expired
        case .revoked: return .revoked
        default: return .notAllowed
        }
    }

    var exitCode: Int32 { exit.rawValue }

    func report() {
        FileHandle.standardError.write(Data("regtoken: error: \(message)\n".utf8))
    }
}

/// Runs `body`, turning library errors into one-line CLI errors.
func cli<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as CLIError {
        throw e
    } catch let e as LedgerError {
        throw CLIError(e)
    } catch let e as KeyError {
        throw CLIError(e.reason)
    } catch let e as RevocationError {
        throw CLIError(e.reason)
    } catch let e as IssueError {
        throw CLIError(e.reason, exit: e.code == .invalidClaims ? .invalidInput : .failure)
    }
}
