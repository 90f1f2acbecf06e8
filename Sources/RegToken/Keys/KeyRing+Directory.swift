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
/// Private key files that group or others can read are refused. Names starting with `.` and
/// the subdirectory `retired/` are ignored; any other file is an error, so a typo never goes
/// unnoticed.
extension KeyRing {
    public static let activeFileName = "active"

    /// Loads every key in `directory`.
    public static func load(directory: String) throws(KeyError) -> KeyRing {
        let names: [String]
        do { names = try AtomicFile.list(directory) } catch {
            throw KeyError(.io, "cannot read key directory \(directory): \(error)")
        }
        var keys: [SigningKey] = []
        var active: String? = nil
        for name in names where !name.hasPrefix(".") {
            let path = "\(directory)/\(name)"
            if name == activeFileName {
                let bytes = try readKeyFile(path)
                let kid = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
                active = kid.isEmpty ? nil : kid
                continue
            }
            if name == "retired" { continue }
            if name.hasSuffix(".hs256") {
                let kid = String(name.dropLast(6))
                try checkPrivate(path)
                keys.append(try SigningKey(id: kid, hmacSecret: readKeyFile(path)))
            } else if name.hasSuffix(".pub.pem") {
                let kid = String(name.dropLast(8))
                keys.append(try keyFromPEM(kid: kid, path: path))
            } else if name.hasSuffix(".pem") {
                let kid = String(name.dropLast(4))
                try checkPrivate(path)
                let key = try keyFromPEM(kid: kid, path: path)
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

    private static func keyFromPEM(kid: String, path: String) throws(KeyError) -> SigningKey {
        let pem = try readKeyFile(path)
        do {
            return try SigningKey(id: kid, pem: String(decoding: pem, as: UTF8.self))
        } catch {
            throw KeyError(error.code, "\(path): \(error.reason)")
        }
    }

    private static func readKeyFile(_ path: String) throws(KeyError) -> [UInt8] {
        do { return try AtomicFile.read(path, limit: 1 << 20) } catch {
            throw KeyError(.io, "cannot read key file: \(error)")
        }
    }

    /// Refuses a private key file that group or others can read, with the fix in the message.
    static func checkPrivate(_ path: String) throws(KeyError) {
        let mode: mode_t
        do { mode = try AtomicFile.permissions(of: path) } catch {
            throw KeyError(.io, "cannot read key file: \(error)")
        }
        if mode & 0o077 != 0 {
            throw KeyError(.insecurePermissions, "private key file \(path) is readable by group or others (mode \(String(mode, radix: 8))); run: chmod 600 \(path)")
        }
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

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
