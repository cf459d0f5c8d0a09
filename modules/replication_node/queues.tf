# The stream the peer's sender writes into, and the two on-failure queues.
resource "aws_kinesis_stream" "replication" {
  name             = var.replication_stream_name
  shard_count      = var.replication_stream_shard_count
  retention_period = var.replication_stream_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.node.arn

  stream_mode_details {
    stream_mode = var.replication_stream_shard_count == null ? "ON_DEMAND" : "PROVISIONED"
  }
}

# Each mapping's on-failure destination (batches given up on, as shard and sequence ranges) and
# where each function puts poison records whole. Kept long enough to redrive. The message size
# is set, not left to the service's default (which has changed before): the functions size a
# poison report in UTF-8 bytes to fit exactly this (replication.failures.QUEUE_MAX_MESSAGE_BYTES,
# which a test compares with this value).
resource "aws_sqs_queue" "failures" {
  for_each = local.functions

  name                              = each.value.failure_queue
  max_message_size                  = 262144
  message_retention_seconds         = var.failure_queue_retention_seconds
  kms_master_key_id                 = aws_kms_key.node.arn
  kms_data_key_reuse_period_seconds = 300
}
