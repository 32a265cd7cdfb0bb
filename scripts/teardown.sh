#!/usr/bin/env bash
# Deletes the doc-processor stack and everything it created, documents and results included. CloudFormation
# cannot delete a bucket that holds objects, so both buckets are emptied first (objects, versions and delete
# markers). Run it with your own (administrator) credentials on your machine: the instance role can neither list
# nor delete anything, by design.
#
# Usage: teardown.sh [--stack-name NAME] [--yes]
#   --stack-name NAME  default: doc-processor
#   --yes              do not ask (needed when stdin is not a terminal)
# Environment: AWS_PROFILE / AWS_REGION as for the AWS CLI; AWS_CLI the CLI to run (default: aws).
set -euo pipefail

aws_cli=${AWS_CLI:-aws}
stack=doc-processor
assume_yes=false

usage() {
  echo "usage: teardown.sh [--stack-name NAME] [--yes]" >&2
  exit "$1"
}
while [ $# -gt 0 ]; do
  case $1 in
    --stack-name) [ $# -ge 2 ] || usage 64; stack=$2; shift 2 ;;
    --yes) assume_yes=true; shift ;;
    -h | --help) usage 0 ;;
    *) echo "teardown: unknown argument '$1'" >&2; usage 64 ;;
  esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$aws_cli" cloudformation describe-stacks --stack-name "$stack" >/dev/null 2>"$work/err"; then
  echo "teardown: no stack $stack here ($(tr -d '\n' <"$work/err")); check AWS_PROFILE and AWS_REGION" >&2
  exit 1
fi
output() {
  local value
  value=$("$aws_cli" cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue | [0]" --output text)
  # A stack that failed before creating the bucket has no such output (the CLI prints None).
  if [ "$value" != None ]; then echo "$value"; fi
}
source_bucket=$(output SourceBucketName)
output_bucket=$(output OutputBucketName)

if [ "$assume_yes" != true ]; then
  if [ ! -t 0 ]; then
    echo "teardown: not a terminal; pass --yes to delete stack $stack without asking" >&2
    exit 64
  fi
  echo "This deletes stack $stack and every object in s3://${source_bucket:-?} and s3://${output_bucket:-?}."
  read -r -p "Type the stack name to confirm: " answer
  [ "$answer" = "$stack" ] || { echo "teardown: not confirmed; nothing deleted" >&2; exit 1; }
fi

# Deletes every object version and delete marker, 1000 at a time (unversioned objects have version "null").
empty_bucket() {
  local bucket=$1 batch=$work/batch.json result
  [ -n "$bucket" ] || return 0
  if ! "$aws_cli" s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
    echo "teardown: s3://$bucket does not exist (any more)"
    return 0
  fi
  while :; do
    "$aws_cli" s3api list-object-versions --bucket "$bucket" --max-keys 1000 --no-paginate --output json \
      --query "{Objects: [Versions, DeleteMarkers][].{Key: Key, VersionId: VersionId}, Quiet: \`true\`}" >"$batch"
    grep -q '"Key"' "$batch" || break
    result=$("$aws_cli" s3api delete-objects --bucket "$bucket" --delete "file://$batch" --output json)
    # Quiet mode lists only failures; stop rather than loop on objects that cannot be deleted.
    if [[ $result == *'"Errors"'* ]]; then
      echo "teardown: some objects of s3://$bucket could not be deleted: $result" >&2
      exit 1
    fi
  done
  echo "teardown: emptied s3://$bucket"
}

delete_stack() {
  "$aws_cli" cloudformation delete-stack --stack-name "$stack"
  "$aws_cli" cloudformation wait stack-delete-complete --stack-name "$stack"
}

empty_bucket "$source_bucket"
empty_bucket "$output_bucket"
echo "teardown: deleting stack $stack (the instance is terminated first; this takes a few minutes)"
if ! delete_stack; then
  # A daemon still running while the buckets were emptied may have written again: empty them and retry once.
  echo "teardown: the first delete did not complete; emptying the buckets again and retrying" >&2
  empty_bucket "$source_bucket"
  empty_bucket "$output_bucket"
  if ! delete_stack; then
    echo "teardown: stack $stack is not deleted; its failed events:" >&2
    "$aws_cli" cloudformation describe-stack-events --stack-name "$stack" --max-items 20 \
      --query "StackEvents[?contains(ResourceStatus, 'FAILED')].[LogicalResourceId, ResourceStatusReason]" \
      --output text >&2 || true
    exit 1
  fi
fi
echo "teardown: stack $stack deleted"
