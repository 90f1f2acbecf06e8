import NIOCore
import NIOEmbedded
import NIOHTTP1
import RegTokenLoadTest

/// NIOHTTP1's request decoder (llhttp), the reference the byte-level readers are checked
/// against: every part it reads from some bytes, and whether it refused them somewhere (parts
/// read before the refusal are kept: an error after a head still leaves the head read).
enum NIORequestDecoder {
    static func parts(_ bytes: [UInt8]) -> (parts: [HTTPServerRequestPart], refused: Bool) {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        let refused = (try? channel.writeInbound(ByteBuffer(bytes: bytes))) == nil
        var parts: [HTTPServerRequestPart] = []
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
        return (parts, refused)
    }

    /// The targets of every head it reads from `bytes`, in order.
    static func targets(_ bytes: [UInt8]) -> [String] {
        parts(bytes).parts.compactMap { if case .head(let h) = $0 { h.uri } else { nil } }
    }
}

/// A part as the codec tests compare them: heads by their fields, body bytes joined up to the end
/// (two readers may slice a body differently).
protocol ComparedPart: Equatable {
    static func body(_ bytes: [UInt8]) -> Self
    static var end: Self { get }
}

extension ComparedPart {
    /// `parts` with each head made by `head` and adjacent body parts joined.
    static func joined<Head>(_ parts: [HTTPPart<Head, ByteBuffer>], head: (Head) -> Self) -> [Self] {
        var out: [Self] = []
        var pending: [UInt8]?
        for part in parts {
            switch part {
            case .head(let h):
                if let bytes = pending { out.append(.body(bytes)); pending = nil }
                out.append(head(h))
            case .body(var b):
                pending = (pending ?? []) + (b.readBytes(length: b.readableBytes) ?? [])
            case .end:
                if let bytes = pending { out.append(.body(bytes)); pending = nil }
                out.append(.end)
            }
        }
        if let bytes = pending { out.append(.body(bytes)) }
        return out
    }
}

/// Seeded randomness for APIs that take a generator: a failure replays.
extension SplitMix: RandomNumberGenerator {}

extension SplitMix {
    /// A number below `n`.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
