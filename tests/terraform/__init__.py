"""Offline Terraform plan tests: real Terraform against a schema-only AWS stand-in."""
