@testable import RegTokenAccess

/// `RegistryRequest.parse(target:)` as it was written on a `String` per path segment (before it
/// read the segments on the target's bytes), kept as the reference the byte-level parse is
/// compared with (`RegistryRequestTests`).
enum ReferenceRegistryRequest {
    typealias Endpoint = RegistryRequest.Endpoint

    static func parse(target: String) -> Result<RegistryRequest, RequestError> {
        // On the target's own bytes: no copy of them, no decoded path (each segment is decoded
        // on its own, and one of up to 15 bytes is a String without an allocation).
        let bytes = target.utf8.span
        guard bytes.count <= 8192 else { return .failure(RequestError.ambiguous("request target is too long")) }
        var q: Int?
        for i in bytes.indices {
            let b = bytes[i]
            if b < 0x21 || b > 0x7E || b == UInt8(ascii: "#") || b == UInt8(ascii: "\\") {
                return .failure(RequestError.ambiguous("request target has a character that must not appear in it"))
            }
            if b == UInt8(ascii: "?") && q == nil { q = i }
        }
        let pathEnd = q ?? bytes.count
        // Split on '/' before decoding is splitting after it: an encoded '/' is refused.
        var segments: [String] = []
        segments.reserveCapacity(8)
        var segmentStart = 0
        for i in 0...pathEnd where i == pathEnd || bytes[i] == UInt8(ascii: "/") {
            guard let segment = decodePath(bytes.extracting(segmentStart..<i)) else {
                return .failure(RequestError.ambiguous("path has a percent-encoded '/', '.', '\\\\' or NUL, or a broken escape"))
            }
            segments.append(segment)
            segmentStart = i + 1
        }
        var rawQuery: [UInt8] = []
        if let q {
            rawQuery.reserveCapacity(bytes.count - q - 1)
            for i in (q + 1)..<bytes.count { rawQuery.append(bytes[i]) }
        }
        // A path starts with '/': the first segment is empty.
        guard segments.first == "" else { return .failure(RequestError.notRegistryPath) }
        segments.removeFirst()
        guard segments.first == "v2" else { return .failure(RequestError.notRegistryPath) }
        segments.removeFirst()
        if segments.isEmpty || segments.count == 1 && segments[0].isEmpty {
            return .success(RegistryRequest(endpoint: .base, repository: nil, mountFrom: nil))
        }
        // Trailing slash only on uploads/ (POST /v2/<name>/blobs/uploads/); empty segments elsewhere are '//'.
        let trailingSlash = segments.last == ""
        if trailingSlash { segments.removeLast() }
        for s in segments {
            if s.isEmpty { return .failure(RequestError.ambiguous("path has '//'")) }
            if s == "." || s == ".." { return .failure(RequestError.ambiguous("path has a '.' or '..' segment")) }
        }
        let query: [String: String]
        switch RegistryRequest.parseQuery(rawQuery) {
        case .success(let parsed): query = parsed
        case .failure(let f): return .failure(f)
        }

        if segments.count == 1 && segments[0] == "_catalog" && !trailingSlash {
            return .success(RegistryRequest(endpoint: .catalog, repository: nil, mountFrom: nil))
        }
        let n = segments.count
        // (A constant from here on: the functions below do not box it.)
        let segmentsRead = segments
        func name(_ count: Int) -> Result<String, RequestError> {
            guard count >= 1 else { return .failure(RequestError.notRegistryPath) }
            let parts = segmentsRead[0..<count]
            guard parts.allSatisfy(RegistryRequest.isNameComponent) else {
                return .failure(RequestError.invalidName("invalid repository name: use lowercase letters, digits and separators"))
            }
            // Appended rather than joined: a name of up to 15 bytes stays a small string.
            var joined = parts[0]
            for part in parts.dropFirst() {
                joined += "/"
                joined += part
            }
            guard joined.utf8.count <= 255 else { return .failure(RequestError.invalidName("repository name is longer than 255 characters")) }
            return .success(joined)
        }
        func make(_ endpoint: Endpoint, nameCount: Int, mountFrom: String? = nil) -> Result<RegistryRequest, RequestError> {
            name(nameCount).map { RegistryRequest(endpoint: endpoint, repository: $0, mountFrom: mountFrom) }
        }

        if trailingSlash {
            // Only /v2/<name>/blobs/uploads/ ends with a slash.
            guard n >= 3, segments[n - 2] == "blobs", segments[n - 1] == "uploads" else {
                return .failure(RequestError.ambiguous("path has a trailing '/'"))
            }
            return Self.uploadStart(nameCount: n - 2, query: query, name: name)
        }
        if n >= 3, segments[n - 2] == "tags", segments[n - 1] == "list" {
            return make(.tags, nameCount: n - 2)
        }
        if n >= 3, segments[n - 2] == "manifests" {
            let ref = segments[n - 1]
            guard RegistryRequest.isTag(ref) || RegistryRequest.isDigest(ref) else { return .failure(RequestError.invalidName("invalid manifest reference: a tag or a digest")) }
            return make(.manifest(reference: ref), nameCount: n - 2)
        }
        if n >= 4, segments[n - 3] == "blobs", segments[n - 2] == "uploads" {
            let id = segments[n - 1]
            guard RegistryRequest.isUploadID(id) else { return .failure(RequestError.invalidName("invalid upload id")) }
            return make(.upload(id: id), nameCount: n - 3)
        }
        if n >= 3, segments[n - 2] == "blobs", segments[n - 1] == "uploads" {
            return Self.uploadStart(nameCount: n - 2, query: query, name: name)
        }
        if n >= 3, segments[n - 2] == "blobs" {
            let digest = segments[n - 1]
            guard RegistryRequest.isDigest(digest) else { return .failure(RequestError.invalidName("invalid digest")) }
            return make(.blob(digest: digest), nameCount: n - 2)
        }
        if n >= 3, segments[n - 2] == "referrers" {
            let digest = segments[n - 1]
            guard RegistryRequest.isDigest(digest) else { return .failure(RequestError.invalidName("invalid digest")) }
            return make(.referrers(digest: digest), nameCount: n - 2)
        }
        return .failure(RequestError.notRegistryPath)
    }

    static func uploadStart(nameCount: Int, query: [String: String], name: (Int) -> Result<String, RequestError>) -> Result<RegistryRequest, RequestError> {
        name(nameCount).flatMap { repo in
            var from: String? = nil
            if let mount = query["mount"] {
                guard RegistryRequest.isDigest(mount) else { return .failure(RequestError.invalidName("invalid mount digest")) }
                guard let f = query["from"] else { return .success(RegistryRequest(endpoint: .uploadStart, repository: repo, mountFrom: nil)) }
                guard RegistryRequest.isRepositoryName(f) else {
                    return .failure(RequestError.invalidName("invalid mount source repository name"))
                }
                from = f
            }
            return .success(RegistryRequest(endpoint: .uploadStart, repository: repo, mountFrom: from))
        }
    }


    /// A path segment percent-decoded, or nil where the parse refuses it (as the parse did).
    static func decodePath(_ raw: Span<UInt8>) -> String? {
        guard RegistryRequest.hasEscape(raw) else { return raw.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) } }
        return RegistryRequest.decodeEscapes(raw)
    }
}
