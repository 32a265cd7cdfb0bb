#!/usr/bin/env bash
# Creates or updates the doc-processor stack (scripts/cloudformation/doc-processor.json) and prints its outputs.
# The template's launch template carries a placeholder where the bootstrap goes: this script replaces it with
# scripts/user-data.sh, so that file stays the one source of the bootstrap.
#
# Usage: deploy.sh --ssh-cidr CIDR --release-url URL --release-sha256 HEX [options]
#   --ssh-cidr CIDR         the only address allowed to SSH in, e.g. 203.0.113.7/32 (required; never 0.0.0.0/0)
#   --release-url URL       https URL of the release tarball from `npm run package` (required)
#   --release-sha256 HEX    its sha256 (release/<name>-<version>.tgz.sha256) (required)
#   --stack-name NAME       default: doc-processor
#   --mode MODE             instance (default) or autoscaling
#   --parameter KEY=VALUE   any other template parameter (repeatable), e.g. OutputPrefix=processed/
#   --render-only FILE      write the deployable template to FILE and stop (no AWS call)
# Environment: AWS_PROFILE / AWS_REGION as for the AWS CLI; AWS_CLI the CLI to run (default: aws).
# Needs: the AWS CLI v2 with credentials that may create the stack's resources (IAM included), and node.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
template=$here/cloudformation/doc-processor.json
user_data=$here/user-data.sh
aws_cli=${AWS_CLI:-aws}

usage() {
  cat >&2 <<'EOF'
usage: deploy.sh --ssh-cidr CIDR --release-url URL --release-sha256 HEX [--stack-name NAME]
                 [--mode instance|autoscaling] [--parameter KEY=VALUE]... [--render-only FILE]
EOF
  exit "$1"
}

stack=doc-processor
mode=instance
ssh_cidr=""
release_url=""
release_sha256=""
render_only=""
overrides=()
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage 0 ;;
    -*) [ $# -ge 2 ] || { echo "deploy: $1 needs a value" >&2; usage 64; } ;;
  esac
  case $1 in
    --ssh-cidr) ssh_cidr=$2; shift 2 ;;
    --release-url) release_url=$2; shift 2 ;;
    --release-sha256) release_sha256=$2; shift 2 ;;
    --stack-name) stack=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --parameter)
      [[ $2 == [A-Za-z]*=* ]] || { echo "deploy: --parameter wants KEY=VALUE, got '$2'" >&2; exit 64; }
      overrides+=("$2"); shift 2 ;;
    --render-only) render_only=$2; shift 2 ;;
    *) echo "deploy: unknown argument '$1'" >&2; usage 64 ;;
  esac
done

missing=()
[ -n "$ssh_cidr" ] || missing+=("--ssh-cidr (your address as a /32: curl https://checkip.amazonaws.com)")
[ -n "$release_url" ] || missing+=(--release-url)
[ -n "$release_sha256" ] || missing+=(--release-sha256)
if [ ${#missing[@]} -gt 0 ]; then
  printf 'deploy: missing %s\n' "${missing[@]}" >&2
  exit 64
fi
# The template rejects these too; saying so here saves a failed change set.
case $ssh_cidr in
  0.0.0.0/* | */0)
    echo "deploy: --ssh-cidr $ssh_cidr opens SSH to the world; give your own address, e.g. 203.0.113.7/32" >&2
    exit 64 ;;
  */*) ;;
  *) echo "deploy: --ssh-cidr wants a CIDR such as $ssh_cidr/32" >&2; exit 64 ;;
esac
case $mode in
  instance | autoscaling) ;;
  *) echo "deploy: --mode is instance or autoscaling, got '$mode'" >&2; exit 64 ;;
esac
if ! command -v node >/dev/null; then
  echo "deploy: node is needed to inline scripts/user-data.sh into the template" >&2
  exit 69
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rendered=${render_only:-$work/doc-processor.json}

# Replace the one UserData element marked doc-processor:user-data-body by the script, verbatim.
# EC2 takes at most 16 KiB of user data and CloudFormation 51,200 bytes of inline template: refuse beyond either.
node -e '
  const fs = require("node:fs");
  const [templatePath, scriptPath, outPath] = process.argv.slice(1);
  const fail = (message) => {
    console.error("deploy: " + message);
    process.exit(1);
  };
  const template = JSON.parse(fs.readFileSync(templatePath, "utf8"));
  const body = fs.readFileSync(scriptPath, "utf8");
  if (Buffer.byteLength(body) > 14 * 1024) fail(scriptPath + " is over 14 KiB: with the preamble, over the 16 KiB limit");
  const userData = template.Resources?.LaunchTemplate?.Properties?.LaunchTemplateData?.UserData;
  const parts = userData?.["Fn::Base64"]?.["Fn::Join"]?.[1] ?? [];
  const marked = parts.flatMap((p, i) => (typeof p === "string" && p.includes("doc-processor:user-data-body") ? [i] : []));
  if (marked.length !== 1) {
    fail(templatePath + ": " + marked.length + " UserData elements marked doc-processor:user-data-body (expected 1)");
  }
  parts[marked[0]] = body;
  const out = JSON.stringify(template);
  if (Buffer.byteLength(out) > 51200) fail("the template is over 51,200 bytes: deploy it through S3 (--s3-bucket)");
  fs.writeFileSync(outPath, out);
' "$template" "$user_data" "$rendered"

if [ -n "$render_only" ]; then
  echo "deploy: wrote $render_only (scripts/user-data.sh inlined)"
  exit 0
fi

echo "deploy: stack $stack ($mode), SSH from $ssh_cidr; this takes a few minutes"
if ! "$aws_cli" cloudformation deploy \
  --stack-name "$stack" \
  --template-file "$rendered" \
  --capabilities CAPABILITY_NAMED_IAM \
  --no-fail-on-empty-changeset \
  --tags project=doc-processor \
  --parameter-overrides \
  "DeploymentMode=$mode" "SshCidr=$ssh_cidr" "ReleaseUrl=$release_url" "ReleaseSha256=$release_sha256" \
  ${overrides[@]+"${overrides[@]}"}; then
  echo "deploy: the stack did not reach a complete state; its failed events:" >&2
  "$aws_cli" cloudformation describe-stack-events --stack-name "$stack" --max-items 20 \
    --query "StackEvents[?contains(ResourceStatus, 'FAILED')].[LogicalResourceId, ResourceStatusReason]" \
    --output text >&2 || true
  exit 1
fi

"$aws_cli" cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey, OutputValue]' --output text

cat <<EOF

Next (README "Deploy to AWS"): the instance installs and starts the daemon within a few minutes of launch
(log: /var/log/doc-processor-bootstrap.log). Connect with
  aws ec2-instance-connect ssh --instance-id <InstanceId>
and check the identity and permissions there:
  sudo -u doc-processor node-22 /opt/doc-processor/current/dist/cli.js check --config /etc/doc-processor/config.json
  bash /opt/doc-processor/current/scripts/validate-role.sh <SourceBucketName> <OutputBucketName>
Remove everything with: scripts/teardown.sh --stack-name $stack
EOF
