/// What a caller asks of a token: where, what, and on which namespace.
public struct AccessRequest: Sendable, Hashable {
    /// The region this verifier serves; a token for another region is refused.
    public var region: String
    /// Pull, push or delete.
    public var access: Access
    /// The namespace (first segment of the repository name), or `nil` for requests on no
    /// repository (such as `GET /v2/`).
    public var namespace: String?
    /// The account that owns ``namespace``, when the caller knows it (the proxy's namespaces file).
    /// A token of any other account is refused with `namespaceNotAllowed`.
    public var namespaceOwner: String?

    /// A request for `access` in `region`, on a namespace or on none.
    /// - Parameters:
    ///   - region: the region this verifier serves.
    ///   - access: pull, push or delete.
    ///   - namespace: the namespace the request touches, or `nil` for a request on no repository.
    ///   - namespaceOwner: the account that owns `namespace`, or `nil` to leave ownership unchecked.
    public init(region: String, access: Access, namespace: String? = nil, namespaceOwner: String? = nil) {
        self.region = region
        self.access = access
        self.namespace = namespace
        self.namespaceOwner = namespaceOwner
    }
}
