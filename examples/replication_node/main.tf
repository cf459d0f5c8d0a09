# The smallest deployment of modules/replication_node: cn-north-1's side, replicating one table
# with ap-southeast-1. The full deployments are envs/cn-north-1 and envs/ap-southeast-1, which
# take every name from defaults.json and expose every setting as a variable.
#
# Before planning: python tools/build_lambdas.py (the zips in dist/). After applying: store the
# peer's writer keys (tools/peer_keys.py) and the signing keys (tools/signing_keys.py init), as
# the README's "Deploy order" says; Terraform creates no secret.
provider "aws" {
  region = "cn-north-1"
}

locals {
  # The runtime the zips were built for: defaults.json holds it, for the build tool too.
  lambda_runtime = jsondecode(file("${path.module}/../../defaults.json")).lambda_runtime
}

module "node" {
  source = "../../modules/replication_node"

  # The table this node creates, and the peer's table whose changes it receives.
  tables    = { "user-cn" = { hash_key = "PK" } }
  table_map = { "user-sg" = "user-cn" }

  # Where this region's sender ships changes: the peer's stream, with the peer account's keys
  # from these Parameter Store entries (<prefix>AccessKey and <prefix>SecretKey).
  peer_region             = "ap-southeast-1"
  peer_replication_stream = "ddb_replication_stream_sg"
  peer_credentials_prefix = "/DDBReplication/TableSG/"
  signing_keys_parameter  = "/DDBReplication/SigningKeys" # the same name in both regions

  # What the peer's sender writes into, and where failures wait for a redrive.
  replication_stream_name       = "ddb_replication_stream_cn"
  sender_failure_queue_name     = "ddbstreamcn"
  replicator_failure_queue_name = "ddbreplicatorcn"

  dist_dir       = "${path.module}/../../dist"
  lambda_runtime = local.lambda_runtime

  alarm_emails = ["ops@example.com"]
}

output "replication_stream_name" {
  description = "The peer's peer_replication_stream."
  value       = module.node.replication_stream_name
}

output "peer_writer_user_name" {
  description = "Create this user's access key here and store it in the peer's Parameter Store."
  value       = module.node.peer_writer_user_name
}
