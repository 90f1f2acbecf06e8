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
    /// The repository the request touches (`acme/app`), for tokens with repository rules; `nil`
    /// for requests on no repository. A token with rules is refused for a repository when no
    /// rule matching it allows ``access``.
    public var repository: String?
    /// The client's address, for tokens limited to addresses (`allow_from`); `nil` when unknown,
    /// and then such a token is refused.
    public var clientAddress: IPAddress?

    /// A request for `access` in `region`, on a namespace or on none.
    /// - Parameters:
    ///   - region: the region this verifier serves.
    ///   - access: pull, push or delete.
    ///   - namespace: the namespace the request touches, or `nil` for a request on no repository.
    ///   - namespaceOwner: the account that owns `namespace`, or `nil` to leave ownership unchecked.
    ///   - repository: the repository the request touches, or `nil`.
    ///   - clientAddress: the client's address, or `nil` when unknown.
    public init(region: String, access: Access, namespace: String? = nil, namespaceOwner: String? = nil,
                repository: String? = nil, clientAddress: IPAddress? = nil) {
        self.region = region
        self.access = access
        self.namespace = namespace
        self.namespaceOwner = namespaceOwner
        self.repository = repository
        self.clientAddress = clientAddress
    }
}
