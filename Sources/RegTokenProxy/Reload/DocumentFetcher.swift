import RegTokenProxyCore
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Fetches a published document (the signed revocation list) over http or https with
/// `If-None-Match`, through AsyncHTTPClient.
///
/// Every fetch ends within ``timeout``, whatever the peer does: the deadline covers connecting,
/// the TLS handshake, the response head and the whole body, and the fetch is also raced
/// against a timer of its own, so a server that accepts the connection and never answers (or
/// stalls a TLS handshake) costs one timeout, never the polling. An IP address works as an
/// https host (no SNI is sent for it; the certificate must name the address).
public final class DocumentFetcher: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var etag: String?
        public var body: [UInt8]
    }

    public let url: String
    let client: HTTPClient
    let timeout: TimeAmount
    let maxBytes: Int

    /// - Parameters:
    ///   - url: an `http://` or `https://` URL.
    ///   - caFile: PEM certificates to trust instead of the system roots (https only).
    ///   - timeout: the most one fetch may take, all included.
    public init(url: String, caFile: String? = nil, timeout: TimeAmount = .seconds(10), maxBytes: Int = 64 << 20) throws {
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            throw ProxyError(.invalidFetchConfiguration, "URL must start with http:// or https:// (\(url.prefix(80)))")
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: try ProxyTLS.clientConfiguration(caFile: caFile), redirectConfiguration: .disallow,
                                                     timeout: .init(connect: timeout, read: timeout))
        configuration.httpVersion = .http1Only
        self.url = url
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.timeout = timeout
        self.maxBytes = maxBytes
    }

    /// GETs the URL, sending `If-None-Match: etag` when given.
    public func fetch(ifNoneMatch etag: String?) async throws -> Response {
        let timeout = self.timeout
        return try await withThrowingTaskGroup(of: Response.self) { group in
            group.addTask { try await self.get(ifNoneMatch: etag) }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds) + 100_000_000)
                throw ProxyError(.fetchFailed, "no complete answer within \(timeout.nanoseconds / 1_000_000_000) s")
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw ProxyError(.fetchFailed, "no answer") }
            return first
        }
    }

    private func get(ifNoneMatch etag: String?) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/jose, */*")
        if let etag { request.headers.add(name: "If-None-Match", value: etag) }
        let response = try await client.execute(request, deadline: .now() + timeout)
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: maxBytes)
        } catch is NIOTooManyBytesError {
            throw ProxyError(.fetchFailed, "answer is larger than \(maxBytes) bytes")
        }
        return Response(status: Int(response.status.code), etag: response.headers.first(name: "etag"), body: Array(body.readableBytesView))
    }

    private let isShutDown = Mutex(false)

    /// Closes the client's connections (once; later calls do nothing).
    public func shutdown() async {
        guard isShutDown.withLock({ s -> Bool in defer { s = true }; return !s }) else { return }
        try? await client.shutdown()
    }
}
