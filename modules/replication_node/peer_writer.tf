# The peer region's sender writes into this region's stream with the access key of a user here:
# aws-cn and aws share no identity, so a role can't be assumed across the border. The user can
# put records into this one stream and do nothing else. Its access key is created outside
# Terraform (README: "Deploying"), so no secret ever enters the state.
resource "aws_iam_group" "peer_writer" {
  name = var.peer_writer_name
}

data "aws_iam_policy_document" "peer_writer" {
  statement {
    sid       = "PutRecordsIntoTheReplicationStream"
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
    resources = [aws_kinesis_stream.replication.arn]
  }
  # The stream is encrypted with the node's key: a producer needs a data key to write.
  statement {
    sid       = "EncryptRecords"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.node.arn]
  }
}

resource "aws_iam_group_policy" "peer_writer" {
  name   = "put-records"
  group  = aws_iam_group.peer_writer.name
  policy = data.aws_iam_policy_document.peer_writer.json
}

resource "aws_iam_user" "peer_writer" {
  name = var.peer_writer_name
}

resource "aws_iam_user_group_membership" "peer_writer" {
  user   = aws_iam_user.peer_writer.name
  groups = [aws_iam_group.peer_writer.name]
}

# The peer's writer keys, which this region's sender uses. Terraform creates the parameters
# with a placeholder and never looks at their values again; tools/peer_keys.py sets them.
resource "aws_ssm_parameter" "peer_keys" {
  for_each = toset(["AccessKey", "SecretKey"])

  name        = "${var.peer_credentials_prefix}${each.key}"
  description = "${each.key} of the ${var.peer_region} writer user; set with tools/peer_keys.py"
  type        = "SecureString"
  key_id      = aws_kms_key.node.arn
  value       = local.peer_key_placeholder

  lifecycle {
    ignore_changes = [value]
  }
}

locals {
  # Not a secret: what the parameters hold until tools/peer_keys.py stores the real keys.
  peer_key_placeholder = "unset: run tools/peer_keys.py"
}
