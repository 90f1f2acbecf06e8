import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A minimal HTTP(S) GET with `If-None-Match`, for polling a published revocation list.
public struct HTTPFetcher: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var etag: String?
        public var body: [UInt8]
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    let scheme: String
    let host: String
    let port: Int
    let path: String
    let tls: NIOSSLContext?
    let group: any EventLoopGroup
    let timeout: TimeAmount
    let maxBytes: Int

    /// - Parameter caFile: PEM certificates to trust instead of the system roots (https only).
    public init(url: String, caFile: String? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                timeout: TimeAmount = .seconds(10), maxBytes: Int = 64 << 20) throws {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            scheme = "http"
            rest = url.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            scheme = "https"
            rest = url.dropFirst(8)
        } else {
            throw Failure(description: "revocation list URL must start with http:// or https://")
        }
        let hostPort = rest.prefix { $0 != "/" }
        path = rest.count > hostPort.count ? String(rest.dropFirst(hostPort.count)) : "/"
        if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
            host = String(hostPort[..<colon].filter { $0 != "[" && $0 != "]" })
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
                throw Failure(description: "revocation list URL has an invalid port")
            }
            port = p
        } else {
            host = String(hostPort.filter { $0 != "[" && $0 != "]" })
            port = scheme == "https" ? 443 : 80
        }
        guard !host.isEmpty else { throw Failure(description: "revocation list URL has no host") }
        if scheme == "https" {
            var config = TLSConfiguration.makeClientConfiguration()
            if let caFile { config.trustRoots = .file(caFile) }
            tls = try NIOSSLContext(configuration: config)
        } else {
            tls = nil
        }
        self.group = group
        self.timeout = timeout
        self.maxBytes = maxBytes
    }

    /// GETs the URL, sending `If-None-Match: etag` when given.
    public func fetch(ifNoneMatch etag: String?) async throws -> Response {
        let promise = group.next().makePromise(of: Response.self)
        let host = self.host, tls = self.tls, maxBytes = self.maxBytes
        let channel: any Channel
        do {
            channel = try await connect(promise: promise, host: host, tls: tls, maxBytes: maxBytes)
        } catch {
            // Every promise is completed, whatever happens (NIO checks for leaked promises).
            promise.fail(error)
            throw error
        }
        return try await request(channel, etag: etag, promise: promise)
    }

    private func connect(promise: EventLoopPromise<Response>, host: String, tls: NIOSSLContext?, maxBytes: Int) async throws -> any Channel {
        try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(Collector(promise: promise, maxBytes: maxBytes))
                }
            }
            .connect(host: host, port: port).get()
    }

    private func request(_ channel: any Channel, etag: String?, promise: EventLoopPromise<Response>) async throws -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: port == (scheme == "https" ? 443 : 80) ? host : "\(host):\(port)")
        headers.add(name: "Accept", value: "application/jose, */*")
        headers.add(name: "Connection", value: "close")
        if let etag { headers.add(name: "If-None-Match", value: etag) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        do {
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        } catch {
            promise.fail(error)
            try? await channel.close()
            throw error
        }
        let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure(description: "no complete answer in time"))
            channel.close(promise: nil)
        }
        defer { timeoutTask.cancel() }
        let response = try await promise.futureResult.get()
        try? await channel.close()
        return response
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        let promise: EventLoopPromise<Response>
        let maxBytes: Int
        var response = Response(status: 0, etag: nil, body: [])
        var done = false

        func finish(_ result: Result<Response, any Error>) {
            guard !done else { return }
            done = true
            promise.completeWith(result)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            finish(.failure(Failure(description: "connection closed before a complete answer")))
        }

        init(promise: EventLoopPromise<Response>, maxBytes: Int) {
            self.promise = promise
            self.maxBytes = maxBytes
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                response.status = Int(head.status.code)
                response.etag = head.headers["etag"].first
            case .body(var buffer):
                if response.body.count + buffer.readableBytes > maxBytes {
                    finish(.failure(Failure(description: "answer is larger than \(maxBytes) bytes")))
                    context.close(promise: nil)
                    return
                }
                response.body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                finish(.success(response))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(.failure(Failure(description: "connection closed before a complete answer")))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            finish(.failure(Failure(description: "\(error)")))
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HTTPFetcher.Collector: Sendable {}
