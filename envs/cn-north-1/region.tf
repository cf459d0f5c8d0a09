# This environment's region. Everything else here is shared with the other environment
# (main.tf, variables.tf and outputs.tf are symlinks into ../shared).
locals {
  region = "cn-north-1"
}
