import RegTokenProxyCore
import NIOCore
import NIOSSL
import RegToken

/// The proxy's TLS settings: TLS 1.2 or later, and on TLS 1.2 only forward-secret AEAD suites
/// (ECDHE with AES-GCM or ChaCha20-Poly1305; TLS 1.3's suites are all of that kind). Static RSA
/// key exchange, CBC and SHA-1 suites, TLS 1.0 and 1.1 are refused.
public enum ProxyTLS {
    /// The TLS 1.2 suites offered by default (OpenSSL names).
    public static let defaultCipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// A server context from a certificate chain and its key. The key file must be the running
    /// user's (or root's), a regular file, and readable by nobody else (0600).
    /// - Parameters:
    ///   - minimumVersion: `1.2` (default) or `1.3`.
    ///   - cipherSuites: TLS 1.2 suites, OpenSSL names separated by `:`.
    public static func serverContext(certificate: String, key: String, minimumVersion: String = "1.2",
                                     cipherSuites: String = defaultCipherSuites) throws(ProxyError) -> NIOSSLContext {
        let config = try serverConfiguration(certificate: certificate, key: key, minimumVersion: minimumVersion, cipherSuites: cipherSuites)
        do {
            return try NIOSSLContext(configuration: config)
        } catch {
            throw ProxyError(.invalidTLSConfiguration, "TLS settings refused (certificate, key and cipher suites \(cipherSuites.prefix(200))): \(SystemErrorText.describe(error))")
        }
    }

    /// The client side, for every connection regtoken makes (to the issuer, an https registry, a
    /// proxy under load, the service): TLS 1.2 or later, the peer's certificate checked against
    /// the PEM certificates in `caFile` (else the system roots) and its name.
    public static func clientConfiguration(caFile: String?) throws(ProxyError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let caFile {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw ProxyError(.invalidFetchConfiguration, "cannot read CA certificates \(caFile): \(SystemErrorText.describe(error))")
            }
        }
        return tls
    }

    /// The name a client sends (SNI) and checks for `host`: nil for an IP address, whose
    /// certificate must name the address itself.
    public static func serverName(for host: String) -> String? {
        (try? SocketAddress(ipAddress: String(host.filter { $0 != "[" && $0 != "]" }), port: 0)) == nil ? host : nil
    }

    /// The configuration ``serverContext(certificate:key:minimumVersion:cipherSuites:)`` makes
    /// its context from (servers that build their own context, such as `regtoken serve`'s).
    public static func serverConfiguration(certificate: String, key: String, minimumVersion: String = "1.2",
                                           cipherSuites: String = defaultCipherSuites) throws(ProxyError) -> TLSConfiguration {
        let keyBytes: [UInt8]
        let certBytes: [UInt8]
        do {
            keyBytes = try AtomicFile.read(key, limit: 1 << 20, trust: .secret)
            certBytes = try AtomicFile.read(certificate, limit: 1 << 20, trust: .owned)
        } catch {
            throw ProxyError(.invalidTLSConfiguration, "\(error)")
        }
        let chain: [NIOSSLCertificateSource]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certBytes).map { NIOSSLCertificateSource.certificate($0) }
        } catch {
            throw ProxyError(.invalidTLSConfiguration, "the TLS certificate \(certificate) is not a PEM certificate chain")
        }
        guard !chain.isEmpty else { throw ProxyError(.invalidTLSConfiguration, "\(certificate) holds no PEM certificate") }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw ProxyError(.invalidTLSConfiguration, "the TLS key \(key) is not an unencrypted PEM private key")
        }
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        switch minimumVersion {
        case "1.2": config.minimumTLSVersion = .tlsv12
        case "1.3": config.minimumTLSVersion = .tlsv13
        default: throw ProxyError(.invalidTLSConfiguration, "TLS minimum version must be 1.2 or 1.3, not \(minimumVersion.prefix(16))")
        }
        config.cipherSuites = cipherSuites
        return config
    }
}
