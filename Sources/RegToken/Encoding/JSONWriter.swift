/// Writes compact JSON with RFC 8259 string escaping. For the issuer and the revocation list.
package struct JSONWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    package var output: String { String(decoding: bytes, as: UTF8.self) }

    package mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    /// Appends literal text (an object member's opening, say).
    package mutating func literal(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// One object member: its `opening` (`{` or `,`, the quoted name and `:`), then the value
    /// `value` writes.
    package mutating func member(_ opening: StaticString, _ value: (inout JSONWriter) -> Void) {
        literal(opening)
        value(&self)
    }

    package mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20, 0x7F:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `["a","b",...]`.
    package mutating func stringArray(_ values: [String]) {
        bytes.append(UInt8(ascii: "["))
        for (i, v) in values.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            string(v)
        }
        bytes.append(UInt8(ascii: "]"))
    }
}
