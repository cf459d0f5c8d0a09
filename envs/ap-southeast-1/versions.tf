terraform {
  # 1.7: removed blocks with lifecycle { destroy = false } (upgrades.tf);
  # 1.9: validations that refer to other variables.
  required_version = ">= 1.9"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }

  # Keep the state in a bucket of this account (with versioning on) rather than on one laptop:
  #
  # backend "s3" {
  #   bucket       = "<your-state-bucket>"
  #   key          = "ddb-replication/ap-southeast-1.tfstate"
  #   region       = "ap-southeast-1"
  #   use_lockfile = true
  #   encrypt      = true
  # }
}
