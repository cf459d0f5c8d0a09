terraform {
  # 1.7: removed blocks with lifecycle { destroy = false } (upgrades.tf);
  # 1.9: validations that refer to other variables; 1.11: what the environments need (S3
  # state locking), required here too so module and environments state one floor.
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }
}
