#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Words for people from the errors of the networking and TLS libraries, whose descriptions name
/// their internals (`bind(descriptor:ptr:bytes:)`, `SingleConnectionFailure(…)`,
/// `failedToLoadCertificate`): the system's reason when an `errno` is in there, else a plain phrase
/// for the known cases, else the description's first line.
package enum SystemErrorText {
    package static func describe(_ error: any Error) -> String {
        describe(String(describing: error))
    }

    package static func describe(_ text: String) -> String {
        if let n = errnoValue(in: text) { return String(cString: strerror(n)).lowercased() }
        let phrases: [(String, String)] = [
            ("UnknownHost", "unknown host"), ("Name or service not known", "unknown host"),
            ("connectTimeout", "timed out connecting"), ("deadlineExceeded", "timed out"), ("readTimeout", "timed out waiting for an answer"),
            ("failedToLoadCertificate", "not a readable PEM certificate"), ("failedToLoadPrivateKey", "not a readable PEM private key"),
            ("CERTIFICATE_VERIFY_FAILED", "the server's certificate is not trusted (give its CA)"),
            ("handshakeFailed", "the TLS handshake failed"), ("remoteConnectionClosed", "the server closed the connection"),
            ("connectionReset", "the connection was reset"),
        ]
        for (needle, phrase) in phrases where text.contains(needle) { return phrase }
        let first = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? text
        return String(first.prefix(200))
    }

    /// The number after the last `errno: ` in `text`, when there is one.
    static func errnoValue(in text: String) -> Int32? {
        let bytes = Array(text.utf8), marker = Array("errno: ".utf8)
        guard bytes.count > marker.count else { return nil }
        var i = bytes.count - marker.count
        while i >= 0 {
            if Array(bytes[i..<(i + marker.count)]) == marker {
                let digits = bytes[(i + marker.count)...].prefix { $0 >= 0x30 && $0 <= 0x39 }
                if let n = Int32(String(decoding: digits, as: UTF8.self)), n > 0 { return n }
                return nil
            }
            i -= 1
        }
        return nil
    }
}
