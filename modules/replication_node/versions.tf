terraform {
  required_version = ">= 1.7" # removed blocks with lifecycle { destroy = false }
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }
}
