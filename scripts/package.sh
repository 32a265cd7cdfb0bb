#!/usr/bin/env bash
# Builds the release artifact that scripts/user-data.sh installs: release/<name>-<version>.tgz, the `npm pack` of
# the project plus npm-shrinkwrap.json (a copy of package-lock.json: npm pack never ships package-lock.json, and the
# instance's `npm ci --omit=dev` needs a lockfile), and release/<name>-<version>.tgz.sha256 to pin it.
# The same sources give the same bytes (npm pack fixes mtimes and order), so the checksum can be pinned.
#
# Usage: npm run package
set -euo pipefail
cd "$(dirname "$0")/.."

out=release
stage=$out/.stage
trap 'rm -rf "$stage"' EXIT

npm run build --silent

# tsc never deletes outputs of removed sources; a stale file in dist/ would ship.
stale=()
while IFS= read -r -d '' f; do
  rel=${f#dist/}
  base=${rel%.map}
  base=${base%.js}
  base=${base%.d.ts}
  [ -f "src/$base.ts" ] || [ -f "src/$rel" ] || stale+=("$f")
done < <(find dist -type f -print0)
if [ ${#stale[@]} -gt 0 ]; then
  echo "package: dist/ has files without a source in src/ (${stale[*]}): rm -rf dist && npm run package" >&2
  exit 1
fi

# Stage exactly the files npm would pack here, then add the lockfile under the name npm pack keeps.
rm -rf "$stage"
mkdir -p "$stage"
npm pack --dry-run --json --ignore-scripts 2>/dev/null |
  node -e '
    let s = "";
    process.stdin.on("data", (d) => (s += d)).on("end", () => {
      for (const f of JSON.parse(s)[0].files) process.stdout.write(f.path + "\0");
    });' |
  xargs -0 cp --parents --preserve=mode -t "$stage"
cp package-lock.json "$stage/npm-shrinkwrap.json"

tarball=$(cd "$stage" && npm pack --ignore-scripts --silent --pack-destination ..)
tarball=${tarball##*$'\n'}
path=$out/$tarball

if ! tar -tzf "$path" package/npm-shrinkwrap.json >/dev/null 2>&1; then
  rm -f "$path"
  echo "package: the tarball has no npm-shrinkwrap.json, so the instance could not run npm ci:" >&2
  echo "  add \"npm-shrinkwrap.json\" to \"files\" in package.json" >&2
  exit 1
fi

(cd "$out" && sha256sum "$tarball" >"$tarball.sha256")
sha=$(cut -d' ' -f1 "$path.sha256")
echo "release: $path"
echo "sha256:  $sha"
