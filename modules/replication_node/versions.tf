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
}
