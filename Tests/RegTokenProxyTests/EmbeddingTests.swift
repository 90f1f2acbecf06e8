import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import RegToken
import RegTokenAccess
import RegTokenProxy
import RegTokenProxyCore
import Testing

/// The README's embedding example: the verifier and the access decision in a plain SwiftNIO
/// pipeline, run here on an EmbeddedChannel exactly as written there.
final class RegistryAuthHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let verifier: TokenVerifier
    let policy = AccessPolicy(region: "eu-west-1")

    init(verifier: TokenVerifier) { self.verifier = verifier }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let now = Int64(Date().timeIntervalSince1970)
        let request = RequestHead(method: head.method.rawValue, target: head.uri,
                                  version: (Int(head.version.major), Int(head.version.minor)), headers: Array(head.headers))
        switch policy.decide(head: request, verifier: verifier, now: now) {
        case .allow(let allowed):
            // Serve the request, or forward it; allowed.tokenID and allowed.account say who asked.
            respond(context, .ok, "hello \(allowed.account)")
        case .deny(let denied):
            // denied.status, denied.code and denied.message make the Docker error response.
            respond(context, HTTPResponseStatus(statusCode: denied.status), denied.message)
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ text: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: String(text.utf8.count))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

@Suite("Embedding the verifier and the access decision in a SwiftNIO server")
struct EmbeddingTests {
    func roundTrip(_ authorization: String?) throws -> (HTTPResponseStatus, String) {
        let key = try SigningKey.generate(.hs256, id: "k")
        let verifier = TokenVerifier(keys: try KeyRing(keys: [key]))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RegistryAuthHandler(verifier: verifier))
        var headers: HTTPHeaders = ["Host": "registry.example"]
        if let authorization {
            let now = Int64(Date().timeIntervalSince1970)
            let token = try TokenIssuer(key: key).issue(TokenClaims(account: "acme", region: "eu-west-1", scope: .pull, issuedAt: now, expiresAt: now + 60))
            headers.add(name: "Authorization", value: authorization == "token" ? "Bearer \(token)" : authorization)
        }
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v2/acme/app/manifests/v1", headers: headers)))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self),
              case .body(.byteBuffer(let body)) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response")
            return (.internalServerError, "")
        }
        _ = try channel.finish()
        return (head.status, String(buffer: body))
    }

    @Test("allowed with a token, refused with the reason without one")
    func example() throws {
        let ok = try roundTrip("token")
        #expect(ok.0 == .ok && ok.1 == "hello acme")
        let none = try roundTrip(nil)
        #expect(none.0 == .unauthorized && none.1.contains("authentication required"))
        let bad = try roundTrip("Bearer x.y.z")
        #expect(bad.0 == .unauthorized && bad.1 == "malformed token")
    }
}
