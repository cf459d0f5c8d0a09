# The smallest deployment of modules/proxy_host: squid in ap-southeast-1, so that cn-north-1's
# senders reach this region's Kinesis endpoint through one fixed address. In a deployment the
# environments create it from their `proxy` variable, with the node's key and alarm topic.
provider "aws" {
  region = "ap-southeast-1"
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

module "proxy" {
  source = "../../modules/proxy_host"

  vpc_id    = "vpc-0123456789abcdef0"
  subnet_id = "subnet-0123456789abcdef0" # a public subnet: the peer connects over the internet

  # Only the peer's senders may connect: the EIPs of the NAT gateways they leave through.
  allowed_source_cidrs = ["54.222.1.2/32"]

  # This region's Kinesis endpoint is the only place squid tunnels to.
  kinesis_region = "ap-southeast-1"

  # The key encrypting the root volume (the node's kms_key_arn output, in a deployment).
  kms_key_arn = "arn:${data.aws_partition.current.partition}:kms:ap-southeast-1:${data.aws_caller_identity.current.account_id}:key/0a1b2c3d-4e5f-4a1b-8c2d-0123456789ab"
}

output "proxy_url" {
  description = "What the peer's senders set as peer_proxy_url."
  value       = module.proxy.proxy_url
}
