import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import RegToken
import RegTokenAccess
@_spi(Benchmarks) @testable import RegTokenProxyCore
import Testing

/// A client connection's whole pipeline (the proxy's handler, which runs its HTTP/1.1 codec, exactly as
/// `regtoken proxy` sets them up) on an `EmbeddedEventLoop`, with the registry side an
/// `EmbeddedChannel` too: raw bytes in, the exact bytes the proxy would send the registry out.
final class ProxyPipeline {
    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    private(set) var upstreams: [EmbeddedChannel] = []

    /// When set, connecting to the registry fails.
    var connectFails = false

    init(state: ProxyState, region: String = "eu-west-1", configure: (inout ProxyConfiguration) -> Void = { _ in }) throws {
        client = EmbeddedChannel(loop: loop)
        var config = ProxyConfiguration(listenHost: "127.0.0.1", listenPort: 0, upstreamHost: "127.0.0.1", upstreamPort: 5000, region: region)
        configure(&config)
        let connector = UpstreamConnector { [loop] _ in
            if self.connectFails { return loop.makeFailedFuture(ChannelError.connectTimeout(.seconds(5))) }
            let channel = EmbeddedChannel(loop: loop)
            self.upstreams.append(channel)
            do {
                try UpstreamConnector.configureUpstreamPipeline(channel.pipeline.syncOperations)
                return channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 5000)).map { channel }
            } catch {
                return loop.makeFailedFuture(error)
            }
        }
        try ProxyHandler.configureClientPipeline(client.pipeline.syncOperations, state: state, config: config, metrics: ProxyMetrics(),
                                                 logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, connector: connector)
        _ = client.connect(to: try SocketAddress(ipAddress: "10.1.2.3", port: 40000))
        loop.run()
    }

    /// Sends raw bytes from the client.
    func send(_ text: String) {
        _ = try? client.writeInbound(client.allocator.buffer(string: text))
        loop.run()
    }

    /// What the proxy wrote to the registry so far (all upstream connections, in order).
    func upstreamBytes() -> String {
        var out = ""
        for channel in upstreams {
            while let data = try? channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let b) = data { out += String(buffer: b) }
            }
        }
        return out
    }

    /// The registry answers on the newest upstream connection.
    func respond(_ text: String) {
        guard let channel = upstreams.last else { return }
        _ = try? channel.writeInbound(channel.allocator.buffer(string: text))
        loop.run()
    }

    /// What the proxy wrote to the client so far.
    func clientBytes() -> String {
        var out = ""
        while let data = try? client.readOutbound(as: IOData.self) {
            if case .byteBuffer(let b) = data { out += String(buffer: b) }
        }
        return out
    }

    /// What the proxy wrote to the client so far, write by write (each buffer handed to the channel).
    func clientWrites() -> [String] {
        var out: [String] = []
        while let data = try? client.readOutbound(as: IOData.self) {
            if case .byteBuffer(let b) = data { out.append(String(buffer: b)) }
        }
        return out
    }
}

@Suite("The proxy's pipeline: exactly what reaches the registry")
struct ProxyPipelineTests {
    static let state = ProxyState(verifier: AccessDecisionTests.verifier, region: "eu-west-1", namespaces: AccessDecisionTests.policy.namespaces,
                                  now: Int64(Date().timeIntervalSince1970))
    /// Tokens valid now (the proxy reads the wall clock).
    static func token(_ scope: Scope) -> String {
        let now = Int64(Date().timeIntervalSince1970)
        return AccessDecisionTests.basic(AccessDecisionTests.token(scope: scope, expiresAt: now + 3600, issuedAt: now))
    }

    @Test("an allowed chunked PATCH spelled 'Chunked' goes upstream as lowercase chunked, with the proxy's forwarding headers only")
    func reframed() throws {
        let p = try ProxyPipeline(state: Self.state)
        p.send("PATCH /v2/acme/app/blobs/uploads/u1 HTTP/1.1\r\nHost: r\r\nAuthorization: \(Self.token(.pushPull))\r\n"
               + "Content-Type: application/octet-stream\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nTransfer-Encoding: Chunked\r\n\r\n"
               + "5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n")
        let up = p.upstreamBytes()
        #expect(up == "PATCH /v2/acme/app/blobs/uploads/u1 HTTP/1.1\r\nHost: r\r\nContent-Type: application/octet-stream\r\n"
                + "Transfer-Encoding: chunked\r\nX-Forwarded-Proto: http\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    }

    @Test("a request pipelined behind a refusal that closes the connection never reaches the registry")
    func nothingAfterClosingRefusal() throws {
        let p = try ProxyPipeline(state: Self.state)
        // Pull-only token pushing with a body: refused, and the body is never read, so the
        // connection closes; the allowed GET behind it must not be forwarded.
        p.send("PATCH /v2/acme/app/blobs/uploads/u1 HTTP/1.1\r\nHost: r\r\nAuthorization: \(Self.token(.pull))\r\n"
               + "Content-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello"
               + "GET /v2/acme/app/tags/list HTTP/1.1\r\nHost: r\r\nAuthorization: \(Self.token(.pushPull))\r\n\r\n")
        #expect(p.upstreamBytes().isEmpty)
        let answer = p.clientBytes()
        #expect(answer.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        #expect(answer.lowercased().contains("connection: close"))
        #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer only: \(answer)")
        #expect(!p.client.isActive)
    }

    @Test("the scheme forwarded is https or http, whatever an embedder configured: nothing else reaches the head's bytes")
    func schemeForwarded() throws {
        for (configured, forwarded) in [("https", "https"), ("http", "http"), ("https\r\nX-Injected: 1", "http"), ("HTTPS", "http")] {
            let p = try ProxyPipeline(state: Self.state) { $0.clientScheme = configured }
            p.send("GET /v2/ HTTP/1.1\r\nHost: r\r\nAuthorization: \(Self.token(.pull))\r\n\r\n")
            #expect(p.upstreamBytes() == "GET /v2/ HTTP/1.1\r\nHost: r\r\nX-Forwarded-Proto: \(forwarded)\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n")
        }
    }

    @Test("the registry's answer reaches the client whole: as the registry side wrote it for an HTTP/1.1 client kept, else with the client's version, Connection: close or chunked framing")
    func answersWritten() throws {
        let ro = Self.token(.pull)
        let fields = "Content-Type: application/json\r\nDocker-Content-Digest: sha256:a\r\n"
        // (request version and Connection, the registry's answer, what the client gets)
        let cases: [(String, String, String)] = [
            ("1.1", "HTTP/1.1 200 OK\r\n\(fields)Content-Length: 2\r\nConnection: keep-alive\r\n\r\n{}",
             "HTTP/1.1 200 OK\r\n\(fields)Content-Length: 2\r\n\r\n{}"),
            ("1.1", "HTTP/1.0 404 Not Found\r\n\(fields)Content-Length: 2\r\nConnection: keep-alive\r\n\r\n{}",
             "HTTP/1.1 404 Not Found\r\n\(fields)Content-Length: 2\r\n\r\n{}"),
            ("1.1\r\nConnection: close", "HTTP/1.1 200 OK\r\n\(fields)Content-Length: 2\r\n\r\n{}",
             "HTTP/1.1 200 OK\r\n\(fields)Content-Length: 2\r\nConnection: close\r\n\r\n{}"),
            ("1.1", "HTTP/1.1 200 OK\r\n\(fields)Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
             "HTTP/1.1 200 OK\r\n\(fields)transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
            ("1.0\r\nConnection: keep-alive", "HTTP/1.1 200 OK\r\n\(fields)Content-Length: 2\r\n\r\n{}",
             "HTTP/1.0 200 OK\r\n\(fields)Content-Length: 2\r\n\r\n{}"),
        ]
        for (version, answer, expected) in cases {
            let p = try ProxyPipeline(state: Self.state)
            p.send("GET /v2/acme/app/manifests/v1 HTTP/\(version)\r\nHost: r\r\nAuthorization: \(ro)\r\n\r\n")
            p.respond(answer)
            #expect(p.clientBytes() == expected, "\(version.debugDescription) \(answer.debugDescription)")
        }
    }

    @Test("a small answer's head and body go to the client as one write; a head goes out alone at the end of the registry's read, before a body not read yet, chunked or too large to copy, and on a response with no body")
    func headAndBodyWrittenTogether() throws {
        let ro = Self.token(.pull)
        let get = "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nAuthorization: \(ro)\r\n\r\n"
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        // Read with its head: one buffer, for a kept HTTP/1.1 client and one made anew (HTTP/1.0).
        // (HTTP/1.0 without keep-alive: the head says Connection: close; the last part's write,
        // which the close waits for, is empty.)
        let closing = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        for (request, expected) in [(get, head + "{}"), (get.replacingOccurrences(of: "HTTP/1.1", with: "HTTP/1.0"), closing)] {
            let p = try ProxyPipeline(state: Self.state)
            p.send(request)
            p.respond(head + "{}")
            #expect(p.clientWrites().filter { !$0.isEmpty } == [expected])
        }
        // The body in a later read: the head is flushed at the end of the first, then the body.
        var p = try ProxyPipeline(state: Self.state)
        p.send(get)
        p.respond(head)
        #expect(p.clientWrites() == [head])
        p.respond("{}")
        #expect(p.clientWrites() == ["{}"])
        // Two answers on one connection, each one write.
        p.send(get)
        p.respond(head + "[]")
        #expect(p.clientWrites() == [head + "[]"])
        // A body larger than the room kept for one (4 KiB): head, then body, as they came.
        let large = String(repeating: "x", count: HTTP1ClientCodec.bodyRoomLimit + 1)
        p = try ProxyPipeline(state: Self.state)
        p.send(get)
        let largeHead = "HTTP/1.1 200 OK\r\nContent-Length: \(large.utf8.count)\r\n\r\n"
        p.respond(largeHead + large)
        #expect(p.clientWrites() == [largeHead, large])
        // The largest body given room: one write.
        let fits = String(large.dropLast())
        p.send(get)
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: \(fits.utf8.count)\r\n\r\n" + fits)
        #expect(p.clientWrites() == ["HTTP/1.1 200 OK\r\nContent-Length: \(fits.utf8.count)\r\n\r\n" + fits])
        // Chunked: the head, then the chunks as written.
        p = try ProxyPipeline(state: Self.state)
        p.send(get)
        p.respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        let chunked = p.clientWrites()
        #expect(chunked.first == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" && chunked.joined().hasSuffix("2\r\n{}\r\n0\r\n\r\n"),
                "\(chunked)")
        // A HEAD request's answer has no body: its head goes out at once, and the next answer is its own.
        p = try ProxyPipeline(state: Self.state)
        p.send(get.replacingOccurrences(of: "GET", with: "HEAD"))
        p.respond(head)
        #expect(p.clientWrites() == [head])
        p.send(get)
        p.respond(head + "{}")
        #expect(p.clientWrites() == [head + "{}"])
        // A 204: no body, the head alone.
        p.send(get)
        p.respond("HTTP/1.1 204 No Content\r\n\r\n")
        #expect(p.clientWrites() == ["HTTP/1.1 204 No Content\r\n\r\n"])
        // The proxy's own answer (a refusal): whole, ending with its body.
        p.send("GET /v2/globex/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nAuthorization: \(ro)\r\n\r\n")
        let refusal = p.clientWrites().joined()
        let parts = refusal.components(separatedBy: "\r\n\r\n")
        let length = parts[0].split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length: ") }.flatMap { Int($0.dropFirst(16)) }
        #expect(refusal.hasPrefix("HTTP/1.1 403 Forbidden\r\n") && parts.count == 2 && length == parts[1].utf8.count && length ?? 0 > 0, "\(refusal)")
    }

    @Test("an HTTP/1.0 client with keep-alive: kept after a response with a length and after a 204 or 304; closed after one whose body ends with the close")
    func http10KeepAlive() throws {
        let ro = Self.token(.pull)
        let get = "GET /v2/acme/app/manifests/v1 HTTP/1.0\r\nHost: r\r\nConnection: keep-alive\r\nAuthorization: \(ro)\r\n\r\n"
        for answer in ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
                       "HTTP/1.1 304 Not Modified\r\nETag: e\r\n\r\n"] {
            let p = try ProxyPipeline(state: Self.state)
            p.send(get)
            p.respond(answer)
            let out = p.clientBytes()
            #expect(out.hasPrefix("HTTP/1.0 ") && !out.lowercased().contains("connection: close") && p.client.isActive, "\(out.debugDescription)")
        }
        let p = try ProxyPipeline(state: Self.state)
        p.send(get)
        p.respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        let out = p.clientBytes()
        #expect(out.hasPrefix("HTTP/1.0 200 OK\r\n") && out.contains("Connection: close\r\n") && out.hasSuffix("\r\n\r\n{}") && !p.client.isActive,
                "\(out.debugDescription)")
    }

    @Test("heads that repeat the fields of the one before go upstream as if made anew: same fields and method, another method (framing line), other fields, after a refusal")
    func repeatedFields() throws {
        let p = try ProxyPipeline(state: Self.state)
        let rw = Self.token(.pushPull)
        let fields = "Host: r\r\nAuthorization: \(rw)\r\nUser-Agent: docker/27.0\r\n"
        let forwarding = "X-Forwarded-Proto: http\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n"
        let steps: [(sent: String, upstream: String?)] = [
            ("GET /v2/acme/app/manifests/v1 HTTP/1.1\r\n\(fields)\r\n", "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nUser-Agent: docker/27.0\r\n\(forwarding)"),
            ("GET /v2/acme/app/manifests/v2 HTTP/1.1\r\n\(fields)\r\n", "GET /v2/acme/app/manifests/v2 HTTP/1.1\r\nHost: r\r\nUser-Agent: docker/27.0\r\n\(forwarding)"),
            // POST with no body: the proxy adds Content-Length: 0 (GET, HEAD and DELETE go without).
            ("POST /v2/acme/app/blobs/uploads/ HTTP/1.1\r\n\(fields)\r\n",
             "POST /v2/acme/app/blobs/uploads/ HTTP/1.1\r\nHost: r\r\nUser-Agent: docker/27.0\r\nContent-Length: 0\r\n\(forwarding)"),
            ("HEAD /v2/acme/app/manifests/v1 HTTP/1.1\r\n\(fields)\r\n", "HEAD /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nUser-Agent: docker/27.0\r\n\(forwarding)"),
            ("GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: s\r\nAuthorization: \(rw)\r\nUser-Agent: docker/27.0\r\n\r\n",
             "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: s\r\nUser-Agent: docker/27.0\r\n\(forwarding)"),
            // Refused (another account's namespace): not forwarded; the next, with the fields
            // of the last one forwarded, comes after a head that was not.
            ("GET /v2/globex/app/manifests/v1 HTTP/1.1\r\n\(fields)\r\n", nil),
            ("GET /v2/acme/app/manifests/v1 HTTP/1.1\r\n\(fields)\r\n", "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nUser-Agent: docker/27.0\r\n\(forwarding)"),
            ("GET /v2/acme/app/manifests/v1 HTTP/1.1\r\n\(fields)\r\n", "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nUser-Agent: docker/27.0\r\n\(forwarding)"),
        ]
        for (i, step) in steps.enumerated() {
            p.send(step.sent)
            #expect(p.upstreamBytes() == (step.upstream ?? ""), "step \(i)")
            if step.upstream != nil { p.respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") }
            let answer = p.clientBytes()
            #expect(answer.hasPrefix(step.upstream == nil ? "HTTP/1.1 403 " : "HTTP/1.1 200 OK\r\n"), "step \(i): \(answer)")
        }
    }

    @Test("a forwarded head's buffer is written again for the next head only when no write holds it: heads the registry connection has not yet taken stay whole")
    func forwardBufferReused() throws {
        let p = try ProxyPipeline(state: Self.state)
        let fields = "Host: r\r\nAuthorization: \(Self.token(.pull))\r\n"
        let forwarded = "Host: r\r\nX-Forwarded-Proto: http\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n"
        // The registry side's writes are left unread: each head is still held by its write when the next is made.
        var expected = ""
        for (i, target) in ["/v2/acme/app/manifests/v1", "/v2/acme/app/manifests/a-longer-reference-than-before", "/v2/"].enumerated() {
            p.send("GET \(target) HTTP/1.1\r\n\(fields)\r\n")
            p.respond("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n\(i)")
            #expect(p.clientBytes().hasSuffix("\r\n\r\n\(i)"))
            expected += "GET \(target) HTTP/1.1\r\n\(forwarded)"
        }
        #expect(p.upstreamBytes() == expected)
        // Read as they go: the buffer is used again; what reaches the registry is the same.
        for target in ["/v2/acme/app/manifests/v1", "/v2/acme/app/manifests/a-longer-reference-than-before", "/v2/"] {
            p.send("GET \(target) HTTP/1.1\r\n\(fields)\r\n")
            #expect(p.upstreamBytes() == "GET \(target) HTTP/1.1\r\n\(forwarded)")
            p.respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            #expect(p.clientBytes() == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        }
    }

    @Test("behind a trusted proxy, the client its X-Forwarded-For names is forwarded, for repeated heads too, and a new one when it changes")
    func repeatedFieldsBehindTrustedProxy() throws {
        let p = try ProxyPipeline(state: Self.state) { $0.trustedProxies = [AddressRange("10.0.0.0/8")!] }
        let rw = Self.token(.pushPull)
        for (forwardedFor, client) in [("203.0.113.7", "203.0.113.7"), ("203.0.113.7", "203.0.113.7"), ("203.0.113.8", "203.0.113.8"),
                                       ("203.0.113.8", "203.0.113.8"), ("198.51.100.1, 10.9.9.9", "198.51.100.1")] {
            p.send("GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nAuthorization: \(rw)\r\nX-Forwarded-For: \(forwardedFor)\r\n\r\n")
            #expect(p.upstreamBytes() == "GET /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nX-Forwarded-Proto: http\r\nX-Forwarded-For: \(client)\r\n\r\n")
            p.respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            #expect(p.clientBytes().hasPrefix("HTTP/1.1 200 OK\r\n"))
        }
    }

    @Test("one Authorization value on a connection is decoded once but checked on every request: revoked between two requests, it is refused; a pull token after a push token cannot push")
    func credentialsCheckedEachRequest() throws {
        let now = Int64(Date().timeIntervalSince1970)
        let verifier = TokenVerifier(keys: try KeyRing(keys: [try #require(try AccessDecisionTests.key.publicKey())]))
        try verifier.install(RevocationList(version: 1, issuedAt: now, entries: []))
        let state = ProxyState(verifier: verifier, region: "eu-west-1", namespaces: AccessDecisionTests.policy.namespaces, now: now)
        let p = try ProxyPipeline(state: state)
        let id = UUIDBytes.random()
        let rw = AccessDecisionTests.basic(AccessDecisionTests.token(scope: .pushPull, expiresAt: now + 3600, id: id, issuedAt: now))
        let ro = AccessDecisionTests.basic(AccessDecisionTests.token(scope: .pull, expiresAt: now + 3600, issuedAt: now))
        func exchange(_ method: String, _ authorization: String) -> String {
            p.send("\(method) /v2/acme/app/blobs/uploads/ HTTP/1.1\r\nHost: r\r\nAuthorization: \(authorization)\r\n\r\n")
            if !p.upstreamBytes().isEmpty { p.respond("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n") }
            return String(p.clientBytes().prefix(12))
        }
        #expect(exchange("POST", rw) == "HTTP/1.1 202")
        #expect(exchange("POST", rw) == "HTTP/1.1 202")
        #expect(exchange("POST", ro) == "HTTP/1.1 403")
        #expect(exchange("POST", rw) == "HTTP/1.1 202")
        try verifier.install(RevocationList(version: 2, issuedAt: now, entries: [.init(id: id, expiresAt: nil)]))
        #expect(exchange("POST", rw) == "HTTP/1.1 401")
        #expect(exchange("POST", ro) == "HTTP/1.1 403")
    }

    @Test("pipelined allowed requests go upstream one at a time, each framed by the proxy")
    func pipelined() throws {
        let p = try ProxyPipeline(state: Self.state)
        let rw = Self.token(.pushPull)
        p.send("GET /v2/ HTTP/1.1\r\nHost: r\r\nAuthorization: \(rw)\r\nContent-Length: 0\r\n\r\n"
               + "PUT /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nAuthorization: \(rw)\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        #expect(p.upstreamBytes() == "GET /v2/ HTTP/1.1\r\nHost: r\r\nX-Forwarded-Proto: http\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n")
        p.respond("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(p.upstreamBytes() == "PUT /v2/acme/app/manifests/v1 HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                + "X-Forwarded-Proto: http\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n{}")
        p.respond("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        let answers = p.clientBytes()
        #expect(answers.hasPrefix("HTTP/1.1 200 OK\r\n") && answers.contains("HTTP/1.1 201 Created\r\n"))
    }
}
