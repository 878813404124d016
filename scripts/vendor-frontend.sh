#!/usr/bin/env bash
# Fetch the browser libraries from the npm registry and copy their ready-made
# builds into static/vendor/. The result is committed, so running the site
# needs no npm; run this again only to change a version (edit the pins below).
#
#   scripts/vendor-frontend.sh
#
# Needs node and npm. Every tarball is checked against its pinned integrity.
set -euo pipefail

MARKDOWN_IT="markdown-it@15.0.3"
MARKDOWN_IT_SRI="sha512-+Az7Ojz3iRGu8KYMvJ6xVhvrxP3eE+vEtJX75Ow88XBpcQNV/0lGX5ZynIIBftREo4DC2jsveAMDaeltmm8QvQ=="
DOMPURIFY="dompurify@3.4.18"
DOMPURIFY_SRI="sha512-ofe3wI/uNm68HInABYFJYqQxRw1EaKAjNdrFVKqjUY+UZurvNd2L/HuQe097s/4RivWiZyP6tT7aoT8atjfhwg=="
HIGHLIGHT="@highlightjs/cdn-assets@11.12.0"
HIGHLIGHT_SRI="sha512-KvOKXODaiFmId9xaq3xc5xCL66wVLUuOngDbO9B/kewbFTqdGbn2nJxNhN3H5R1cgDTVj6R8vH0zgiNDEGjpDw=="

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="$ROOT/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# fetch SPEC SRI DIR: download SPEC's tarball, check it, unpack it into $WORK/DIR.
fetch() {
    local spec="$1" sri="$2" dir="$3" tarball actual
    tarball="$(cd "$WORK" && npm pack --silent "$spec" | tail -n 1)"
    actual="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512")
        .update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$WORK/$tarball")"
    if [[ "$actual" != "$sri" ]]; then
        echo "$spec: integrity mismatch (got $actual)" >&2
        exit 1
    fi
    mkdir -p "$WORK/$dir"
    tar -xzf "$WORK/$tarball" -C "$WORK/$dir" --strip-components=1
}

# copy SRC DEST: copy a build without its source-map comment (the maps are
# not vendored, and a dangling reference breaks hashed static storage).
copy() {
    sed -e '/^\/\/# sourceMappingURL=/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' "$1" > "$2"
}

fetch "$MARKDOWN_IT" "$MARKDOWN_IT_SRI" markdown-it
fetch "$DOMPURIFY" "$DOMPURIFY_SRI" dompurify
fetch "$HIGHLIGHT" "$HIGHLIGHT_SRI" highlightjs

rm -rf "$VENDOR/markdown-it" "$VENDOR/dompurify" "$VENDOR/highlightjs"
mkdir -p "$VENDOR/markdown-it" "$VENDOR/dompurify" "$VENDOR/highlightjs"

# UMD builds: imported for their side effect, they define globalThis.markdownit
# and globalThis.DOMPurify.
copy "$WORK/markdown-it/dist/browser/markdown-it.umd.min.js" "$VENDOR/markdown-it/markdown-it.min.js"
cp "$WORK/markdown-it/LICENSE" "$VENDOR/markdown-it/LICENSE"
copy "$WORK/dompurify/dist/purify.min.js" "$VENDOR/dompurify/purify.min.js"
cp "$WORK/dompurify/LICENSE" "$VENDOR/dompurify/LICENSE"
cp "$WORK/dompurify/LICENSE-MPL" "$VENDOR/dompurify/LICENSE-MPL"

# highlight.js: the ES module build with the common languages, and the GitHub
# themes (light and dark, picked by prefers-color-scheme in the page).
copy "$WORK/highlightjs/es/highlight.min.js" "$VENDOR/highlightjs/highlight.min.js"
copy "$WORK/highlightjs/styles/github.min.css" "$VENDOR/highlightjs/github.min.css"
copy "$WORK/highlightjs/styles/github-dark.min.css" "$VENDOR/highlightjs/github-dark.min.css"
cp "$WORK/highlightjs/LICENSE" "$VENDOR/highlightjs/LICENSE"

cat > "$VENDOR/VERSIONS" <<VERSIONS
# Written by scripts/vendor-frontend.sh; do not edit by hand.
$MARKDOWN_IT $MARKDOWN_IT_SRI
$DOMPURIFY $DOMPURIFY_SRI
$HIGHLIGHT $HIGHLIGHT_SRI
VERSIONS

du -sh "$VENDOR"
