terraform {
  # 1.7: removed blocks with lifecycle { destroy = false } (upgrades.tf);
  # 1.9: validations that refer to other variables;
  # 1.11: the S3 backend's own state locking (use_lockfile, backend.tf).
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }
}
