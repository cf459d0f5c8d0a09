# One role per function, each allowed the named actions its code makes on the node's own
# resources, and nothing else.
data "aws_iam_policy_document" "assume_by_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [data.aws_service_principal.lambda.name]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = local.role_names[each.key]
  description        = "DynamoDB replication ${each.key} in ${local.region}"
  assume_role_policy = data.aws_iam_policy_document.assume_by_lambda.json
}

locals {
  table_arns = [for table in local.replicated_tables : table.arn]

  # Existing tables encrypted with a KMS key of their own: reading their streams and items
  # takes kms:Decrypt on it (DescribeKey: DynamoDB checks the key first). A key policy that
  # doesn't defer to IAM must allow the roles as well.
  existing_table_key_statements = length(local.existing_table_keys) == 0 ? [] : [
    { sid = "UseTheExistingTablesKeys", actions = ["kms:Decrypt", "kms:DescribeKey"], resources = local.existing_table_keys },
  ]

  # What both functions do: read the change-signing keys (the sender signs, the replicator
  # verifies), record and read tombstones, send poison records and failed batches to their
  # queue, use the node's key (Decrypt: streams and SecureStrings; GenerateDataKey: the
  # encrypted queue), write their logs.
  shared_statements = {
    for function in keys(local.functions) : function => [
      { sid = "ReadTheSigningKeys", actions = ["ssm:GetParameter"], resources = ["${local.arn_prefix.ssm}:parameter${var.signing_keys_parameter}"] },
      { sid = "Tombstones", actions = ["dynamodb:BatchGetItem", "dynamodb:PutItem"], resources = [aws_dynamodb_table.bookkeeping["tombstones"].arn] },
      { sid = "ReportFailures", actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.failures[function].arn] },
      { sid = "UseTheNodesKey", actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = [aws_kms_key.node.arn] },
      { sid = "WriteLogs", actions = ["logs:CreateLogStream", "logs:PutLogEvents"], resources = ["${aws_cloudwatch_log_group.function[function].arn}:*"] },
    ]
  }

  # The DynamoDB streams of the tables captured through them (dynamodb_streams or both); none
  # when every table has kinesis capture.
  streamed_table_arns = [for table in local.replicated_tables : table.arn if table.capture != "kinesis"]
  table_stream_statements = length(local.streamed_table_arns) == 0 ? [] : [
    {
      sid       = "ReadTheTablesStreams"
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
      resources = [for arn in local.streamed_table_arns : "${arn}/stream/*"]
    },
  ]
  # The capture stream, when there is one: what Lambda's mapping reads a Kinesis stream with, on
  # the sender's behalf. Its records are decrypted with the node's key (UseTheNodesKey).
  # What a Lambda mapping reads any Kinesis stream with.
  kinesis_read_actions = [
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
  ]
  capture_stream_statements = [
    for stream in aws_kinesis_stream.capture : {
      sid       = "ReadTheCaptureStream"
      actions   = concat(local.kinesis_read_actions, ["kinesis:ListStreams"])
      resources = [stream.arn]
    }
  ]

  statements = {
    sender = concat(local.table_stream_statements, local.capture_stream_statements, [
      # Stamping a write that carries no newer version, and restoring an item it raced with.
      {
        sid       = "StampLocalWrites"
        actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
        resources = local.table_arns
      },
      {
        sid       = "ReadThePeersKeys"
        actions   = ["ssm:GetParameters"]
        resources = ["${local.arn_prefix.ssm}:parameter${var.peer_credentials_prefix}*"]
      },
    ], local.existing_table_key_statements, local.shared_statements.sender)

    replicator = concat([
      {
        sid       = "ReadTheReplicationStream"
        actions   = concat(local.kinesis_read_actions, ["kinesis:SubscribeToShard"])
        resources = [aws_kinesis_stream.replication.arn]
      },
      # UpdateItem: an item written here is stamped with the peer's delete before it is deleted.
      { sid = "ApplyChanges", actions = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], resources = local.table_arns },
      { sid = "CountProgress", actions = ["dynamodb:UpdateItem"], resources = [aws_dynamodb_table.bookkeeping["stats"].arn] },
    ], local.existing_table_key_statements, local.shared_statements.replicator)
  }
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  dynamic "statement" {
    for_each = local.statements[each.key]
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "replication"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

# In a VPC, Lambda manages the functions' network interfaces with the role (the AWS managed
# policy for exactly that).
resource "aws_iam_role_policy_attachment" "vpc_access" {
  for_each = local.in_vpc ? local.functions : {}

  role       = aws_iam_role.function[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}
