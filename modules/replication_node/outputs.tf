output "region" {
  description = "The region this node runs in."
  value       = local.region
}

output "replication_stream_name" {
  description = "This region's replication stream: the peer's peer_replication_stream."
  value       = aws_kinesis_stream.replication.name
}

output "replication_stream_arn" {
  description = "ARN of this region's replication stream."
  value       = aws_kinesis_stream.replication.arn
}

output "peer_writer_user_name" {
  description = "The IAM user whose access key the peer stores under its peer_credentials_prefix."
  value       = aws_iam_user.peer_writer.name
}

output "peer_credentials_parameters" {
  description = "Where the sender reads the peer's writer keys, which tools/peer_keys.py creates (Terraform doesn't)."
  value       = { for part in ["AccessKey", "SecretKey"] : part => "${var.peer_credentials_prefix}${part}" }
}

output "signing_keys_parameter" {
  description = "Where both functions read the change-signing key ring, which tools/signing_keys.py creates (Terraform doesn't)."
  value       = var.signing_keys_parameter
}

output "table_names" {
  description = "The replicated tables in this region: those the node creates and the existing ones."
  value       = keys(local.replicated_tables)
}

output "table_stream_arns" {
  description = "Each replicated table's stream (the sender's source), by table name."
  value       = { for name, table in local.replicated_tables : name => table.stream_arn }
}

output "stats_table_name" {
  description = "The replicator's counters table."
  value       = aws_dynamodb_table.bookkeeping["stats"].name
}

output "function_names" {
  description = "The sender and replicator function names."
  value       = { for function, f in aws_lambda_function.function : function => f.function_name }
}

output "failure_queue_urls" {
  description = "The on-failure queues, by function."
  value       = { for function, queue in aws_sqs_queue.failures : function => queue.url }
}

output "kms_key_arn" {
  description = "The node's key."
  value       = aws_kms_key.node.arn
}

output "alarm_topic_arn" {
  description = "The SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard of this node."
  value       = aws_cloudwatch_dashboard.replication.dashboard_name
}

output "table_captures" {
  description = "How the sender reads each replicated table's changes, by table name: dynamodb_streams, kinesis or both."
  value       = local.capture
}

output "capture_stream_name" {
  description = "The capture stream the tables with kinesis (or both) capture write into, which the sender reads. Null when no table has such capture."
  value       = one(aws_kinesis_stream.capture[*].name)
}

output "capture_stream_arn" {
  description = "ARN of the capture stream. Null when no table has kinesis (or both) capture."
  value       = one(aws_kinesis_stream.capture[*].arn)
}
