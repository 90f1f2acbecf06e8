/// What a token allows on the account's namespaces.
public enum Scope: String, Sendable, Hashable, CaseIterable, Codable {
    /// Read-only: pull.
    case pull = "pull"
    /// Read-write: push and pull. Written `pull,push` in the token (Docker's action list syntax).
    case pushPull = "pull,push"
    /// Read-write, and deleting manifests and blobs: a right of its own, granted only on request
    /// (`token-add --readwrite --delete`). Written `pull,push,delete`.
    case pushPullDelete = "pull,push,delete"

    /// True for a read-only token.
    public var isReadOnly: Bool { self == .pull }

    /// True when the scope grants `access`.
    public func allows(_ access: Access) -> Bool {
        switch access {
        case .pull: return true
        case .push: return self != .pull
        case .delete: return self == .pushPullDelete
        }
    }
}

/// What a request asks of a token.
public enum Access: String, Sendable, Hashable, CaseIterable, Codable {
    /// Reading: manifests, blobs, tags and referrers.
    case pull
    /// Writing: pushing manifests and uploading or mounting blobs.
    case push
    /// Deleting manifests or blobs.
    case delete
}

/// The token signature algorithms regtoken issues and verifies.
public enum Algorithm: String, Sendable, Hashable, CaseIterable, Codable {
    /// HMAC-SHA256 with a shared secret of at least 32 bytes.
    case hs256 = "HS256"
    /// ECDSA on P-256 with SHA-256, signature as raw `r || s` (RFC 7518 §3.4).
    case es256 = "ES256"
}
