import FuzzSupport
import RegTokenAccess

// The Authorization header parser: the input is the values of a request's Authorization headers,
// one per line (the proxy hands every value over; several are refused). Invariants: no crash;
// a token it returns is non-empty and no longer than the header it came from.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAuthorization(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    let values = input.isEmpty ? [] : input.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    let parsed = Credentials.parse(values)
    Fuzz.check(parsed == Credentials.parse(values), "two parses of the same headers differ")
    if case .token(let token) = parsed {
        Fuzz.check(!token.isEmpty, "an empty token")
        Fuzz.check(values.count == 1 && token.count <= values[0].utf8.count, "a token longer than its header")
    }
    return 0
}
