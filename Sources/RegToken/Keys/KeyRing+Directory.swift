#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A key ring on disk: one file per key, named by its key id (see `Keys/README.md`).
///
/// ```
/// <dir>/<kid>.hs256      HS256 secret, raw bytes (at least 32)      0600
/// <dir>/<kid>.pem        ES256 private key, PEM (PKCS#8 or SEC1)     0600
/// <dir>/<kid>.pub.pem    ES256 public key, PEM (verification only)   0644
/// <dir>/active           the key id that signs, one line             0644
/// ```
/// Every file is trusted only after checks: the directory and each file must be owned by the
/// user running regtoken (or root) and not writable by group or others; each file must be a
/// regular file (a symlink, FIFO or device is refused, and nothing blocks on one); private key
/// material must be 0600 whatever the file is called, and a `<kid>.pub.pem` holding a private key
/// is refused. HS256 secrets with fewer than 8 distinct byte values (all zero, one byte repeated,
/// a short pattern) are refused as degenerate. Names starting with `.` and the subdirectory
/// `retired/` are ignored; any other file is an error, so a typo never goes unnoticed.
extension KeyRing {
    /// The file of a key directory that holds the id of the signing key, on one line.
    public static let activeFileName = "active"

    /// Loads every key in `directory`.
    public static func load(directory: String) throws(KeyError) -> KeyRing {
        let names: [String]
        do {
            try AtomicFile.checkDirectory(directory, private: false)
            names = try AtomicFile.list(directory)
        } catch {
            throw KeyError(error.code == .untrusted ? .insecurePermissions : .io, "cannot use key directory: \(error)")
        }
        var keys: [SigningKey] = []
        var active: String? = nil
        for name in names where !name.hasPrefix(".") {
            let path = "\(directory)/\(name)"
            if name == activeFileName {
                let bytes = try readKeyFile(path, trust: .owned)
                let kid = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
                active = kid.isEmpty ? nil : kid
                continue
            }
            if name == "retired" { continue }
            if name.hasSuffix(".hs256") {
                let kid = String(name.dropLast(6))
                let secret = try readKeyFile(path, trust: .secret)
                if Set(secret).count < 8 {
                    throw KeyError(.invalidKey, "HS256 secret in \(path) is degenerate (\(Set(secret).count) distinct byte values); make a new key with regtoken keys generate --alg HS256")
                }
                keys.append(try SigningKey(id: kid, hmacSecret: secret))
            } else if name.hasSuffix(".pub.pem") {
                let kid = String(name.dropLast(8))
                // Read as a secret would be if it holds one: a private key here is refused anyway.
                let key = try keyFromPEM(kid: kid, path: path, trust: .owned, privateMode: false)
                guard !key.canSign else {
                    throw KeyError(.invalidKey, "\(path) holds a private key; a private key belongs in \(kid).pem (mode 0600), and a .pub.pem file holds the public key only")
                }
                keys.append(key)
            } else if name.hasSuffix(".pem") {
                let kid = String(name.dropLast(4))
                let key = try keyFromPEM(kid: kid, path: path, trust: .owned)
                guard key.canSign else {
                    throw KeyError(.invalidKey, "\(path) holds a public key; name public keys <kid>.pub.pem")
                }
                keys.append(key)
            } else {
                throw KeyError(.keyRing, "unexpected file \(path) in the key directory (expected <kid>.hs256, <kid>.pem, <kid>.pub.pem or active)")
            }
        }
        do {
            return try KeyRing(keys: keys, activeKeyID: active)
        } catch {
            throw KeyError(error.code, "\(directory): \(error.reason)")
        }
    }

    /// An ES256 key from a PEM file; private key material must be 0600 whatever the file's name.
    private static func keyFromPEM(kid: String, path: String, trust: AtomicFile.Trust, privateMode: Bool = true) throws(KeyError) -> SigningKey {
        let (pem, mode) = try readKeyFileWithMode(path, trust: trust)
        let key: SigningKey
        do {
            key = try SigningKey(id: kid, pem: String(decoding: pem, as: UTF8.self))
        } catch {
            throw KeyError(error.code, "\(path): \(error.reason)")
        }
        if privateMode && key.canSign && mode & 0o077 != 0 {
            throw KeyError(.insecurePermissions, "private key file \(path) refused: a secret readable by group or others (mode \(String(mode, radix: 8))); run: chmod 600 \(path)")
        }
        return key
    }

    private static func readKeyFileWithMode(_ path: String, trust: AtomicFile.Trust) throws(KeyError) -> (bytes: [UInt8], mode: mode_t) {
        do { return try AtomicFile.readWithMode(path, limit: 1 << 20, trust: trust) } catch {
            if error.code == .untrusted, error.errno == EPERM {
                throw KeyError(.insecurePermissions, trust == .secret ? "private key file \(error.path) refused: \(error.detail ?? "")"
                                                                       : "key file \(error.path) refused: \(error.detail ?? "")")
            }
            throw KeyError(.io, "cannot read key file: \(error)")
        }
    }

    private static func readKeyFile(_ path: String, trust: AtomicFile.Trust) throws(KeyError) -> [UInt8] {
        try readKeyFileWithMode(path, trust: trust).bytes
    }

    /// Writes one key into `directory` (created 0700 if missing): a private key 0600, a public
    /// key 0644. Never replaces an existing key file.
    public static func save(_ key: SigningKey, directory: String) throws(KeyError) {
        do { try AtomicFile.makeDirectory(directory, mode: 0o700) } catch {
            throw KeyError(.io, "cannot create key directory: \(error)")
        }
        let path: String
        let bytes: [UInt8]
        let mode: mode_t
        switch key.algorithm {
        case .hs256:
            path = "\(directory)/\(key.id).hs256"
            bytes = key.hmacSecretBytes ?? []
            mode = 0o600
        case .es256 where key.canSign:
            path = "\(directory)/\(key.id).pem"
            bytes = Array(try key.privateKeyPEM().utf8)
            mode = 0o600
        case .es256:
            path = "\(directory)/\(key.id).pub.pem"
            bytes = Array(try key.publicKeyPEM().utf8)
            mode = 0o644
        }
        for other in ["\(key.id).hs256", "\(key.id).pem", "\(key.id).pub.pem"] where access("\(directory)/\(other)", F_OK) == 0 {
            throw KeyError(.keyRing, "a key with id '\(key.id)' already exists in \(directory)")
        }
        do { try AtomicFile.write(bytes, to: path, mode: mode, exclusive: true) } catch {
            throw KeyError(.io, "cannot write key file: \(error)")
        }
    }

    /// Makes `keyID` the signing key of the ring in `directory` (atomically rewrites `active`).
    public static func activate(keyID: String, directory: String) throws(KeyError) {
        try SigningKey.validate(keyID: keyID)
        do { try AtomicFile.write(Array("\(keyID)\n".utf8), to: "\(directory)/\(activeFileName)", mode: 0o644) } catch {
            throw KeyError(.io, "cannot write the active key file: \(error)")
        }
    }
}

