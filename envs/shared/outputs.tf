# Shared by envs/cn-north-1 and envs/ap-southeast-1 through symlinks (see main.tf).

# What the operator carries to the peer's side.
output "region" {
  description = "This region."
  value       = module.node.region
}

output "replication_stream_name" {
  description = "This region's replication stream (the peer's sender writes to it)."
  value       = module.node.replication_stream_name
}

output "capture_stream_name" {
  description = "The capture stream the tables with kinesis capture write into (null when none has)."
  value       = module.node.capture_stream_name
}

output "peer_writer_user_name" {
  description = "Create this user's access key here and store it in the peer's Parameter Store."
  value       = module.node.peer_writer_user_name
}

output "peer_credentials_parameters" {
  description = "Where this region's sender reads the peer's writer keys (set them with tools/peer_keys.py)."
  value       = module.node.peer_credentials_parameters
}

output "signing_keys_parameter" {
  description = "Where both functions read the change-signing key ring (create it with tools/signing_keys.py init)."
  value       = module.node.signing_keys_parameter
}

output "proxy_url" {
  description = "The peer's peer_proxy_url, when this region runs the proxy."
  value       = var.proxy == null ? null : module.proxy[0].proxy_url
}

output "function_names" {
  description = "The sender and the replicator."
  value       = module.node.function_names
}

output "failure_queue_urls" {
  description = "The on-failure queues: anything in them did not replicate."
  value       = module.node.failure_queue_urls
}

output "stats_table_name" {
  description = "The replicator's counters."
  value       = module.node.stats_table_name
}

output "dashboard_name" {
  description = "This region's CloudWatch dashboard."
  value       = module.node.dashboard_name
}

output "alarm_topic_arn" {
  description = "The topic the alarms notify."
  value       = module.node.alarm_topic_arn
}
