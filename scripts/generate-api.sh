#!/usr/bin/env bash
# Regenerates Sources/RegTokenAPI/Generated from Sources/RegTokenAPI/openapi.yaml with
# swift-openapi-generator 1.14.3 (types, server stubs and client, package access), copies the
# document to RegTokenAPIDocument (served at /openapi.yaml), and records its SHA-256: the test
# APIDocumentTests fails until this has been run after an edit of the document.
#
#   scripts/generate-api.sh        # after editing Sources/RegTokenAPI/openapi.yaml
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
api=$root/Sources/RegTokenAPI
swift build -c release --package-path "$root/scripts/openapi-generator" --product swift-openapi-generator >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$root/scripts/openapi-generator/.build/release/swift-openapi-generator" generate "$api/openapi.yaml" \
    --config "$api/openapi-generator-config.yaml" --output-directory "$out" >/dev/null
rm -f "$api"/Generated/*.swift
cp "$out"/*.swift "$api/Generated/"
cp "$api/openapi.yaml" "$root/Sources/RegTokenAPIDocument/openapi.yaml"
sha256sum "$api/openapi.yaml" | cut -d' ' -f1 > "$api/Generated/openapi.sha256"
echo "generated $(ls "$api"/Generated/*.swift | wc -l) files from openapi.yaml"
