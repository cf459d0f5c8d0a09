# Kinesis capture (a table's capture = "kinesis"): DynamoDB writes the table's changes into the
# node's capture stream (Kinesis Data Streams for DynamoDB), with creation times in
# microseconds and kept for days, and the sender reads them there rather than from the table's
# DynamoDB stream (24 hours, whole seconds). A table keeps its DynamoDB stream all the same:
# switching a table between the two modes then changes neither the table nor its stream.
# "both" is the step between the two: the table writes into the capture stream and the sender
# still reads its DynamoDB stream too (each change arrives twice; versions absorb the second), so
# the next apply removes one path only once the other is already delivering.
locals {
  kinesis_captured = sort([for name, capture in local.capture : name if contains(["kinesis", "both"], capture)])
}

# One stream for the node, only when a table uses it. Encrypted with the node's key: DynamoDB
# writes into it through its service-linked role, which uses the key through Kinesis (the key
# policy lets the account use it through Kinesis, kms.tf).
resource "aws_kinesis_stream" "capture" {
  count = length(local.kinesis_captured) > 0 ? 1 : 0

  name             = var.capture_stream_name
  shard_count      = var.capture_stream_shard_count
  retention_period = var.capture_stream_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.node.arn

  stream_mode_details {
    stream_mode = var.capture_stream_shard_count == null ? "ON_DEMAND" : "PROVISIONED"
  }
}

# Also on a table another configuration manages: the destination is a resource of its own, not
# an attribute of the table, so the module enables and disables it without owning the table.
resource "aws_dynamodb_kinesis_streaming_destination" "capture" {
  for_each = toset(local.kinesis_captured)

  # A created table's name through the resource, so the destination waits for the table.
  table_name = contains(keys(var.tables), each.key) ? aws_dynamodb_table.replicated[each.key].name : data.aws_dynamodb_table.existing[each.key].name
  stream_arn = aws_kinesis_stream.capture[0].arn
  # What lets a delete's version be finer than the second a DynamoDB stream gives.
  approximate_creation_date_time_precision = "MICROSECOND"
}
