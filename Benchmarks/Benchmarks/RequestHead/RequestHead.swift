// The proxy's request heads: what reading one costs with NIOHTTP1's decoder (llhttp, in a
// channel pipeline, as a proxy on NIOHTTP1 runs it) and with the byte-level reader of the layer
// below NIOHTTP1 (`HTTP1RequestHeadReader`), on the same bytes, in one run. See BENCHMARKS.md.
import Benchmark
import CBenchLibcrypto
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import RegToken
@_spi(HTTPBytes) import RegTokenAccess
@_spi(Benchmarks) import RegTokenProxyCore

// REGTOKEN_BENCH_QUICK=1: a smoke run (CI), a fraction of a second per benchmark.
let quick = ProcessInfo.processInfo.environment["REGTOKEN_BENCH_QUICK"] != nil

func config() -> Benchmark.Configuration {
    .init(metrics: [.throughput, .wallClock, .mallocCountTotal, .instructions],
          warmupIterations: quick ? 1 : 3, scalingFactor: .kilo,
          maxDuration: quick ? .milliseconds(200) : .seconds(3), maxIterations: quick ? 5 : 1_000_000)
}

/// A docker client's manifest GET through the proxy, with a 300-byte token as Basic password.
let request: [UInt8] = {
    let token = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0." + String(repeating: "eyJzdWIiOiJhY21lIiwic2NvcGUiOiJwdXNoLHB1bGwifQ", count: 5) + ".c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl"
    let basic = Data("token:\(token)".utf8).base64EncodedString()
    return Array(("GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: registry.example:5000\r\nUser-Agent: docker/27.0.3 go/go1.22.5 git-commit/662f78c kernel/6.1.0 os/linux arch/amd64\r\n"
        + "Authorization: Basic \(basic)\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n"
        + "Accept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n").utf8)
}()

let benchmarks: @Sendable () -> Void = {
    Benchmark("request head: NIOHTTP1's decoder in a pipeline, HTTPRequestHead and end", configuration: config()) { benchmark in
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
        let buffer = channel.allocator.buffer(bytes: request)
        for _ in benchmark.scaledIterations {
            try channel.writeInbound(buffer)
            blackHole(try channel.readInbound(as: HTTPServerRequestPart.self))
            blackHole(try channel.readInbound(as: HTTPServerRequestPart.self))
        }
    }

    Benchmark("request head: the proxy's HTTP1ServerCodec in a pipeline, RequestHead with its framing and end (regtoken)", configuration: config()) { benchmark in
        let channel = EmbeddedChannel(handler: HTTP1ServerCodec(maxHeadBytes: 16384))
        let buffer = channel.allocator.buffer(bytes: request)
        for _ in benchmark.scaledIterations {
            try channel.writeInbound(buffer)
            blackHole(try channel.readInbound(as: ProxyRequestPart.self))
            blackHole(try channel.readInbound(as: ProxyRequestPart.self))
        }
    }

    // As the proxy runs the codec: inside its handler, each part handed on by a direct call.
    Benchmark("request head: the proxy's HTTP1ServerCodec as the proxy runs it (no pipeline hop), RequestHead with its framing and end (regtoken)", configuration: config()) { benchmark in
        let codec = HTTP1ServerCodec(maxHeadBytes: 16384)
        let buffer = ByteBufferAllocator().buffer(bytes: request)
        for _ in benchmark.scaledIterations {
            codec.decode(buffer) { blackHole($0) } error: { blackHole($0) }
        }
    }

    // The Basic credentials of that head: the token's bytes, and Foundation's base64 decoder on
    // the same base64 text (what the proxy called before it had its own).
    let authorization = "Basic " + Data("token:".utf8 + Array(repeating: UInt8(ascii: "e"), count: 300)).base64EncodedString()
    Benchmark("Basic credentials: the token's bytes from the Authorization value (regtoken)", configuration: config()) { benchmark in
        let values = [authorization]
        for _ in benchmark.scaledIterations { blackHole(Credentials.parse(values)) }
    }
    Benchmark("Basic credentials: Foundation's Data(base64Encoded:) on the same base64", configuration: config()) { benchmark in
        let text = String(authorization.dropFirst(6))
        for _ in benchmark.scaledIterations { blackHole(Data(base64Encoded: text)) }
    }

    // The registry's answer to that GET: a manifest, as distribution sends it.
    Benchmark("response: NIOHTTP1's client pipeline, HTTPResponseHead, body and end", configuration: config()) { benchmark in
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        let get = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v2/acme/app/manifests/v1", headers: ["Host": "r"])
        try await responses(channel, benchmark, request: [HTTPClientRequestPart.head(get), .end(nil)], as: HTTPClientResponsePart.self)
    }

    Benchmark("response: the proxy's HTTP1ClientCodec, the head's forwarded fields on their bytes, body and end (regtoken)", configuration: config()) { benchmark in
        let channel = EmbeddedChannel(handler: HTTP1ClientCodec())
        let get = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v2/acme/app/manifests/v1", headers: ["Host": "r"])
        try await responses(channel, benchmark, request: [RegistryRequestPart.head(get), .end], as: RegistryResponsePart.self)
    }

    // A whole exchange on the proxy's own code: a docker client's manifest GET with an HS256
    // token, decided on, forwarded, the registry's answer read and written back, the access line
    // queued (its writer formats it on a thread of its own, to /dev/null), over EmbeddedChannels
    // (no sockets: the proxy's handler and codecs and SwiftNIO's pipeline, nothing else).
    Benchmark("exchange: an allowed GET through the proxy's handler and codecs and its answer, access log on (regtoken)", configuration: config()) { benchmark in
        // (Set up outside the measurement: a key, a token, the pipelines, the log's writer.)
        let exchange = try ProxyExchange()
        defer { exchange.close() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try exchange.run() }
        benchmark.stopMeasurement()
    }

    // The constant-time comparison of a head's values with the previous head's (the 400-byte
    // Authorization value among them), and OpenSSL's on the same bytes.
    let value = Array(authorization.utf8), same = Array(authorization.utf8)
    Benchmark("constant-time comparison of a token-long value: HTTPBytes.sameBytes (regtoken)", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(value.withUnsafeBytes { a in same.withUnsafeBytes { b in HTTPBytes.sameBytes(a, b) } })
        }
    }
    Benchmark("constant-time comparison of a token-long value: OpenSSL's CRYPTO_memcmp", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(value.withUnsafeBytes { a in same.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 } })
        }
    }

    Benchmark("request head: byte-level reader, field ranges (regtoken)", configuration: config()) { benchmark in
        var reader = HTTP1RequestHeadReader(limit: 16384)
        for _ in benchmark.scaledIterations {
            request.withUnsafeBytes { bytes in blackHole(try? reader.read(bytes)) }
        }
    }

    Benchmark("request head: byte-level reader, then the decision's RequestHead (Strings) (regtoken)", configuration: config()) { benchmark in
        var reader = HTTP1RequestHeadReader(limit: 16384)
        for _ in benchmark.scaledIterations {
            request.withUnsafeBytes { bytes in
                guard let head = try? reader.read(bytes) else { return }
                func text(_ r: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: bytes[r]), as: UTF8.self) }
                blackHole(RequestHead(method: text(head.method), target: text(head.target), version: (1, head.minorVersion),
                                      headers: head.fields.map { (text($0.name), text($0.value)) }))
            }
        }
    }
}

let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7","size":7023},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f","size":32654}]}"#.utf8)
let response: [UInt8] = Array(("HTTP/1.1 200 OK\r\nContent-Length: \(manifest.count)\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
    + "Docker-Content-Digest: sha256:0b1d2c4e6f8a0b1d2c4e6f8a0b1d2c4e6f8a0b1d2c4e6f8a0b1d2c4e6f8a0b1d\r\nDocker-Distribution-Api-Version: registry/2.0\r\n"
    + "Etag: \"sha256:0b1d2c4e6f8a0b1d2c4e6f8a0b1d2c4e6f8a0b1d2c4e6f8a0b1d2c4e6f8a0b1d\"\r\nX-Content-Type-Options: nosniff\r\n"
    + "Date: Thu, 03 Dec 2026 20:00:00 GMT\r\n\r\n").utf8) + manifest

/// One GET written (the `request` parts) and its answer read (as three `Part`s), per iteration,
/// through `channel`.
func responses<Request, Part>(_ channel: EmbeddedChannel, _ benchmark: Benchmark, request: [Request], as: Part.Type) async throws {
    try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
    let buffer = channel.allocator.buffer(bytes: response)
    for _ in benchmark.scaledIterations {
        for part in request { try channel.writeOutbound(part) }
        while try channel.readOutbound(as: IOData.self) != nil {}
        try channel.writeInbound(buffer)
        blackHole(try channel.readInbound(as: Part.self))
        blackHole(try channel.readInbound(as: Part.self))
        blackHole(try channel.readInbound(as: Part.self))
    }
}

/// A client connection through the proxy's handler, its registry connection an EmbeddedChannel:
/// ``run()`` sends the GET of `request` with a valid HS256 token, answers it with `response`, and
/// reads what the proxy wrote to both sides.
final class ProxyExchange {
    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    var upstream: EmbeddedChannel?
    let get: ByteBuffer
    let answer: ByteBuffer
    private let devNull: Int32
    private var stopLog: @Sendable () -> Void = {}

    init() throws {
        let key = try SigningKey.generate(.hs256, id: "bench")
        let verifier = TokenVerifier(keys: try KeyRing(keys: [key]))
        let now = Int64(Date().timeIntervalSince1970)
        try verifier.install(RevocationList(version: 1, issuedAt: now, entries: []))
        let state = ProxyState(verifier: verifier, region: "eu-west-1", now: now)
        let token = try TokenIssuer(key: key).issue(TokenClaims(id: .random(), account: "acme", region: "eu-west-1", scope: .pull,
                                                                 issuedAt: now, expiresAt: now + 86_400))
        let head = String(decoding: request, as: UTF8.self)
        let basic = "Basic " + Data("token:\(token)".utf8).base64EncodedString()
        let withToken = head.split(separator: "\r\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("Authorization: ") ? "Authorization: \(basic)" : String($0) }.joined(separator: "\r\n")
        client = EmbeddedChannel(loop: loop)
        get = client.allocator.buffer(string: withToken)
        answer = client.allocator.buffer(bytes: response)
        let config = ProxyConfiguration(listenHost: "127.0.0.1", listenPort: 0, upstreamHost: "127.0.0.1", upstreamPort: 5000, region: "eu-west-1")
        devNull = open("/dev/null", O_WRONLY)
        stopLog = try ProxyPipelines.configureClient(client.pipeline.syncOperations, state: state, config: config, accessLogDescriptor: devNull) { [loop] _ in
            let channel = EmbeddedChannel(loop: loop)
            self.upstream = channel
            do {
                try ProxyPipelines.configureUpstream(channel.pipeline.syncOperations)
                return channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 5000)).map { channel }
            } catch {
                return loop.makeFailedFuture(error)
            }
        }
        _ = client.connect(to: try SocketAddress(ipAddress: "10.1.2.3", port: 40000))
        loop.run()
        try run()  // connects upstream
        // The exchange went through: the registry got the GET, and the client its answer.
        precondition(upstream != nil, "the proxy did not forward the request")
    }

    /// Stops the access log's writer and closes what it wrote to.
    func close() {
        stopLog()
        Foundation.close(devNull)
    }

    func run() throws {
        try client.writeInbound(get)
        loop.run()
        guard let upstream else { return }
        var forwarded = 0
        while let part = try upstream.readOutbound(as: IOData.self) { forwarded += part.readableBytes }
        try upstream.writeInbound(answer)
        loop.run()
        var answered = 0
        while let part = try client.readOutbound(as: IOData.self) { answered += part.readableBytes }
        precondition(forwarded > 0 && answered > manifest.count, "the exchange did not go through: \(forwarded) bytes forwarded, \(answered) answered")
    }
}
