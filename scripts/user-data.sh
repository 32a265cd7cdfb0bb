#!/bin/bash
# EC2 user-data for Amazon Linux 2023 (cloud-init runs it once, as root, at first boot): installs Node.js 22, the
# doc-processor system user, a pinned and checksum-verified release of the daemon, its config and systemd unit, and
# starts it. Safe to run again by hand: with the same parameters it downloads, rewrites and restarts nothing.
#
# The release is self-contained: `npm run package` ships the production node_modules (built for AL2023 x86_64), so
# the instance needs only RELEASE_URL and the Amazon Linux package repositories (for nodejs22); there is no npm and
# no registry here, which lets it run in a private subnet whose only way out is S3/SQS/STS VPC endpoints.
#
# Parameters: environment variables. The deploy wrapper inserts `export NAME='value'` lines right after the
# shebang (cloud-init needs `#!` on the first line); values set here win over nothing, never over the environment.
#   RELEASE_URL          https URL of the release tarball from `npm run package` (e.g. a GitHub release asset: the
#                        instance role needs no permission for it; it can only read the source bucket)
#   RELEASE_SHA256       its sha256 (release/<name>-<version>.tgz.sha256); anything else is refused
#   QUEUE_URL            SQS queue URL
#   SOURCE_BUCKET        bucket the documents are read from
#   OUTPUT_BUCKET        bucket the results are written to
#   EXPECTED_ROLE_NAME   role the daemon must run as (default: EC2DocumentProcessorRole)
#   OUTPUT_PREFIX        optional prefix of every output key
#   EXPECTED_ACCOUNT_ID  optional account the role must belong to (default: the instance's own account)
#   ROOT                 test hook: prefix of every path written (default: empty, the real /)
#
# Exit status: 0 installed and running; 64 a parameter is missing or invalid; 1 anything else (checksum mismatch,
# download, a release without node_modules or whose `dist/cli.js --version` fails, or `systemctl start` failure: the
# journal's last lines are in the log).
# Everything is logged to /var/log/doc-processor-bootstrap.log.
set -Eeuo pipefail
umask 022

RELEASE_URL=${RELEASE_URL:-}
RELEASE_SHA256=${RELEASE_SHA256:-}
QUEUE_URL=${QUEUE_URL:-}
SOURCE_BUCKET=${SOURCE_BUCKET:-}
OUTPUT_BUCKET=${OUTPUT_BUCKET:-}
EXPECTED_ROLE_NAME=${EXPECTED_ROLE_NAME:-EC2DocumentProcessorRole}
OUTPUT_PREFIX=${OUTPUT_PREFIX:-}
EXPECTED_ACCOUNT_ID=${EXPECTED_ACCOUNT_ID:-}
ROOT=${ROOT:-}

readonly SERVICE=doc-processor
readonly SERVICE_USER=doc-processor
readonly PACKAGE_NAME=doc-processor
# Paths the unit expects (systemd/doc-processor.service); the bootstrap writes them under $ROOT.
readonly BASE_DIR=/opt/doc-processor
readonly CONFIG_DIR=/etc/doc-processor
readonly UNIT_PATH=/etc/systemd/system/doc-processor.service
readonly LOG_PATH=/var/log/doc-processor-bootstrap.log

if [ -n "$ROOT" ]; then
  case "$ROOT" in /?*) ;; *) echo "ROOT must be an absolute path other than /: $ROOT" >&2; exit 64 ;; esac
  [ -d "$ROOT" ] || { echo "ROOT is not a directory: $ROOT" >&2; exit 64; }
  ROOT=${ROOT%/}
fi
base=$ROOT$BASE_DIR
releases=$base/releases
config_dir=$ROOT$CONFIG_DIR
config_path=$config_dir/config.json
unit_path=$ROOT$UNIT_PATH

mkdir -p "$ROOT/var/log"
exec > >(tee -a "$ROOT$LOG_PATH") 2>&1

log() { printf '%s doc-processor-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { log "ERROR: $*"; exit 1; }
trap 'log "ERROR: failed at line $LINENO: $BASH_COMMAND"' ERR

log "start (release $RELEASE_URL)"

# --- parameters: report every problem at once, before anything is touched ---------------------------------------
problems=()
RELEASE_SHA256=${RELEASE_SHA256,,}
[[ $RELEASE_URL =~ ^https://[^[:space:]]+$ ]] || problems+=("RELEASE_URL must be an https URL, got '$RELEASE_URL'")
[[ $RELEASE_SHA256 =~ ^[0-9a-f]{64}$ ]] || problems+=("RELEASE_SHA256 must be 64 hex digits, got '$RELEASE_SHA256'")
[[ $QUEUE_URL =~ ^https?://[^[:space:]]+$ ]] || problems+=("QUEUE_URL must be the queue's URL, got '$QUEUE_URL'")
bucket_re='^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$'
[[ $SOURCE_BUCKET =~ $bucket_re ]] || problems+=("SOURCE_BUCKET must be a bucket name, got '$SOURCE_BUCKET'")
[[ $OUTPUT_BUCKET =~ $bucket_re ]] || problems+=("OUTPUT_BUCKET must be a bucket name, got '$OUTPUT_BUCKET'")
[[ -z $SOURCE_BUCKET || $SOURCE_BUCKET != "$OUTPUT_BUCKET" ]] || problems+=("SOURCE_BUCKET and OUTPUT_BUCKET must differ")
[[ $EXPECTED_ROLE_NAME =~ ^[A-Za-z0-9+=,.@_-]{1,64}$ ]] ||
  problems+=("EXPECTED_ROLE_NAME must be an IAM role name (not an ARN), got '$EXPECTED_ROLE_NAME'")
[[ -z $EXPECTED_ACCOUNT_ID || $EXPECTED_ACCOUNT_ID =~ ^[0-9]{12}$ ]] ||
  problems+=("EXPECTED_ACCOUNT_ID must be a 12-digit account id, got '$EXPECTED_ACCOUNT_ID'")
if [ ${#problems[@]} -gt 0 ]; then
  for p in "${problems[@]}"; do log "invalid parameter: $p"; done
  exit 64
fi

# One bootstrap at a time: a manual re-run must not race cloud-init's.
mkdir -p "$ROOT/run"
exec 9>>"$ROOT/run/doc-processor-bootstrap.lock"
flock -n 9 || die "another bootstrap is running"

mkdir -p "$ROOT/var/tmp"
work=$(mktemp -d "$ROOT/var/tmp/doc-processor-bootstrap.XXXXXX")
stage=""
cleanup() {
  rm -rf "$work"
  if [ -n "$stage" ]; then rm -rf "$stage"; fi
}
trap cleanup EXIT

changed=()

# --- Node.js 22: namespaced on AL2023 (/usr/bin/node-22), whatever `node` points to; npm is not needed --------------
if command -v node-22 >/dev/null; then
  log "nodejs22 already installed"
else
  log "installing nodejs22"
  dnf install -y nodejs22
fi

# --- system user (and its group, which may read the config) ---------------------------------------------------------
if getent passwd "$SERVICE_USER" >/dev/null; then
  log "user $SERVICE_USER exists"
else
  log "creating system user $SERVICE_USER"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /sbin/nologin \
    --comment "doc-processor daemon" "$SERVICE_USER"
fi

# --- release: reuse an installed one with this checksum, else download, verify, install ----------------------------
# Each release directory records the checksum of the tarball it came from once its install completed.
version=""
for marker in "$releases"/*/.release-sha256; do
  [ -f "$marker" ] || continue
  if [ "$(<"$marker")" = "$RELEASE_SHA256" ]; then
    version=$(basename "$(dirname "$marker")")
    break
  fi
done

if [ -n "$version" ]; then
  log "release $version (sha256 $RELEASE_SHA256) already installed: no download"
else
  log "downloading $RELEASE_URL"
  curl --fail --silent --show-error --location --proto '=https' --proto-redir '=https' \
    --retry 5 --retry-delay 2 --retry-all-errors --connect-timeout 10 --max-time 600 \
    --output "$work/release.tgz" "$RELEASE_URL" || die "download of $RELEASE_URL failed"
  actual=$(sha256sum "$work/release.tgz" | cut -d' ' -f1)
  if [ "$actual" != "$RELEASE_SHA256" ]; then
    die "checksum mismatch for $RELEASE_URL: expected $RELEASE_SHA256, got $actual; nothing installed"
  fi
  log "checksum verified ($actual)"

  mkdir -p "$releases"
  # Staged next to its final place so the rename into releases/<version> is atomic.
  stage=$(mktemp -d "$releases/.staging.XXXXXX")
  tar -xzf "$work/release.tgz" -C "$stage" --strip-components=1 --no-same-owner
  [ -f "$stage/package.json" ] || die "the release has no package.json: not a tarball from npm run package"
  meta=$(node-22 -e '
    const p = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    console.log(p.name + " " + p.version);' "$stage/package.json") || die "cannot read the release's package.json"
  read -r name version <<<"$meta"
  [ "$name" = "$PACKAGE_NAME" ] || die "the release is package '$name', not $PACKAGE_NAME"
  [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$ ]] || die "unexpected version '$version'"
  [ -f "$stage/systemd/$SERVICE.service" ] || die "the release has no systemd/$SERVICE.service"
  # The instance installs no dependencies (no npm, maybe no route to a registry): the release must carry them.
  [ -d "$stage/node_modules" ] ||
    die "the release has no node_modules: build it with npm run package (it ships the production dependencies)"
  if [ -f "$releases/$version/.release-sha256" ]; then
    # A version is immutable: a different tarball under the same version is a packaging mistake.
    die "release $version is already installed from another tarball (sha256 $(<"$releases/$version/.release-sha256")); publish a new version"
  fi

  chmod -R u+rwX,go+rX,go-w "$stage"
  chmod 0755 "$stage"
  # Smoke check before anything switches: the release's code and dependencies load on this Node. As the service
  # user, as the unit runs it: nothing from the download runs as root.
  smoke=$(runuser -u "$SERVICE_USER" -- node-22 "$stage/dist/cli.js" --version) ||
    die "node-22 dist/cli.js --version failed for release $version"
  [ "$smoke" = "$version" ] || die "release $version: dist/cli.js --version printed '$smoke'"
  log "smoke check passed: node-22 dist/cli.js --version = $smoke"
  printf '%s\n' "$RELEASE_SHA256" >"$stage/.release-sha256"
  rm -rf "${releases:?}/$version" # an interrupted earlier install: it has no marker, so nothing runs from it
  mv -T "$stage" "$releases/$version"
  stage=""
  log "installed release $version"
fi

# Switch atomically: a new symlink renamed over the old one; relative so it stays valid under $ROOT.
if [ "$(readlink "$base/current" 2>/dev/null || true)" != "releases/$version" ]; then
  ln -sfn "releases/$version" "$base/current.new"
  mv -T "$base/current.new" "$base/current"
  changed+=(release)
  log "current -> releases/$version"
fi

# --- config: JSON built by node from the values, never by string interpolation --------------------------------------
mkdir -p "$config_dir"
chmod 0750 "$config_dir"
chown "root:$SERVICE_USER" "$config_dir"
DP_QUEUE_URL=$QUEUE_URL DP_SOURCE_BUCKET=$SOURCE_BUCKET DP_OUTPUT_BUCKET=$OUTPUT_BUCKET \
  DP_OUTPUT_PREFIX=$OUTPUT_PREFIX DP_EXPECTED_ROLE_NAME=$EXPECTED_ROLE_NAME \
  DP_EXPECTED_ACCOUNT_ID=$EXPECTED_ACCOUNT_ID node-22 -e '
    const e = process.env;
    const c = { queueUrl: e.DP_QUEUE_URL, sourceBucket: e.DP_SOURCE_BUCKET, outputBucket: e.DP_OUTPUT_BUCKET };
    if (e.DP_OUTPUT_PREFIX) c.outputPrefix = e.DP_OUTPUT_PREFIX;
    c.expectedRoleName = e.DP_EXPECTED_ROLE_NAME;
    if (e.DP_EXPECTED_ACCOUNT_ID) c.expectedAccountId = e.DP_EXPECTED_ACCOUNT_ID;
    process.stdout.write(JSON.stringify(c, null, 2) + "\n");' >"$work/config.json"
if cmp -s "$work/config.json" "$config_path"; then
  chmod 0640 "$config_path" # an unchanged config keeps (or gets back) its mode and owner
  chown "root:$SERVICE_USER" "$config_path"
  log "config unchanged"
else
  # Written beside with its final mode and owner, then renamed: the daemon never reads a half-written file.
  install -m 0640 "$work/config.json" "$config_path.new"
  chown "root:$SERVICE_USER" "$config_path.new"
  mv -f "$config_path.new" "$config_path"
  changed+=(config)
  log "wrote $CONFIG_DIR/config.json"
fi

# --- systemd unit, from the installed release -------------------------------------------------------------------------
unit_source=$base/current/systemd/$SERVICE.service
if cmp -s "$unit_source" "$unit_path"; then
  log "unit unchanged"
else
  mkdir -p "$(dirname "$unit_path")"
  install -m 0644 "$unit_source" "$unit_path.new"
  mv -f "$unit_path.new" "$unit_path"
  changed+=(unit)
  log "installed $UNIT_PATH"
  systemctl daemon-reload
fi

if ! systemctl is-enabled --quiet "$SERVICE"; then
  systemctl enable "$SERVICE"
  log "enabled $SERVICE"
fi

start_failed() {
  log "ERROR: systemctl $1 $SERVICE failed; status and the journal's last lines:"
  systemctl status --no-pager --lines=0 "$SERVICE" || true
  journalctl --unit "$SERVICE" --lines 30 --no-pager --output cat || true
  exit 1
}
if ! systemctl is-active --quiet "$SERVICE"; then
  log "starting $SERVICE (returns once the daemon reports ready)"
  systemctl start "$SERVICE" || start_failed start
elif [ ${#changed[@]} -gt 0 ]; then
  log "restarting $SERVICE (changed: ${changed[*]})"
  systemctl restart "$SERVICE" || start_failed restart
fi

if [ ${#changed[@]} -gt 0 ]; then
  log "done: $SERVICE $version running (changed: ${changed[*]})"
else
  log "done: $SERVICE $version running (nothing changed)"
fi
