# The state lives in an S3 bucket of this account. The block is left empty on purpose: the
# bucket, key and region come from a file you keep out of git, so nothing tracked is edited:
#
#   python tools/state_bucket.py create --region ap-southeast-1 --profile global   # writes the file
#   terraform init -backend-config=backend.s3.tfbackend
#
# backend.s3.tfbackend.example shows what the file holds.
terraform {
  backend "s3" {}
}
