#!/usr/bin/env bash
# Validates, from inside the instance, that the AWS CLI runs as the instance role with exactly the seed's
# permissions: the caller is the role (not a user), read from source works, write to output works, write to source
# is denied, another service (EC2) is denied. One line per check, then "N of 5 checks passed"; exit 0 only if all pass.
#
# Usage: validate-role.sh SOURCE_BUCKET OUTPUT_BUCKET [SOURCE_TEST_KEY]
#   SOURCE_TEST_KEY  an existing object in the source bucket to read (default: validate-role/test.txt)
# Environment:
#   AWS_CLI             the AWS CLI to run (default: aws)
#   EXPECTED_ROLE_NAME  the role the caller must be (default: EC2DocumentProcessorRole)
#   AWS_ENDPOINT_URL    when set, passed as --endpoint-url to every call (local stand-in; older CLIs ignore the variable)
set -uo pipefail

usage() { echo "usage: $0 SOURCE_BUCKET OUTPUT_BUCKET [SOURCE_TEST_KEY]" >&2; exit 64; }
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
source_bucket=$1
output_bucket=$2
test_key=${3:-validate-role/test.txt}
aws_cli=${AWS_CLI:-aws}
expected_role=${EXPECTED_ROLE_NAME:-EC2DocumentProcessorRole}

endpoint_args=()
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then endpoint_args=(--endpoint-url "$AWS_ENDPOINT_URL"); fi

if ! command -v "$aws_cli" >/dev/null 2>&1; then
  echo "✗ the AWS CLI ($aws_cli) is not installed: on Amazon Linux 2023 it is preinstalled; elsewhere install awscli" >&2
  exit 69
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
total=5

awscli() { "$aws_cli" "${endpoint_args[@]}" "$@"; }
pass() { passed=$((passed + 1)); echo "✓ $1"; }
fail() { echo "✗ $1"; }

# 1. Who am I: must be the role's assumed-role session, not an IAM user.
if identity=$(awscli sts get-caller-identity --query Arn --output text 2>"$work/err"); then
  case "$identity" in
    arn:*:sts::*:assumed-role/"$expected_role"/*) pass "caller is the role: $identity" ;;
    arn:*:iam::*:user/*)
      fail "caller is an IAM user, not the role: $identity"
      echo "  If aws sts get-caller-identity returns a user ARN rather than a role ARN, the instance profile was not"
      echo "  attached correctly. Stop the instance, attach the instance profile under Actions > Security > Modify IAM"
      echo "  Role, and restart."
      ;;
    *) fail "caller is not $expected_role: $identity" ;;
  esac
else
  fail "sts get-caller-identity failed: $(tr -d '\n' <"$work/err")"
fi

# 2. Read from source must succeed.
if awscli s3 cp --only-show-errors "s3://$source_bucket/$test_key" "$work/test.txt" 2>"$work/err"; then
  pass "read s3://$source_bucket/$test_key"
else
  fail "read s3://$source_bucket/$test_key failed: $(tr -d '\n' <"$work/err")"
fi

# 3. Write to output must succeed.
echo "processed output" >"$work/result.txt"
if awscli s3 cp --only-show-errors "$work/result.txt" "s3://$output_bucket/validate-role/result.txt" 2>"$work/err"; then
  pass "write s3://$output_bucket/validate-role/result.txt"
else
  fail "write to output failed: $(tr -d '\n' <"$work/err")"
fi

# 4. Write to source must be denied.
if awscli s3 cp --only-show-errors "$work/result.txt" "s3://$source_bucket/validate-role/attempt.txt" 2>"$work/err"; then
  fail "write to source SUCCEEDED: the role can write to s3://$source_bucket (it must not)"
elif grep -q "AccessDenied" "$work/err"; then
  pass "write to source denied (AccessDenied)"
else
  fail "write to source failed, but not with AccessDenied: $(tr -d '\n' <"$work/err")"
fi

# 5. Another service must be denied.
if awscli ec2 describe-instances >/dev/null 2>"$work/err"; then
  fail "ec2 describe-instances SUCCEEDED: the role has EC2 permissions (it must not)"
elif grep -q "UnauthorizedOperation" "$work/err"; then
  pass "ec2 describe-instances denied (UnauthorizedOperation)"
else
  fail "ec2 describe-instances failed, but not with UnauthorizedOperation: $(tr -d '\n' <"$work/err")"
fi

echo "$passed of $total checks passed"
[ "$passed" -eq "$total" ]
