# The peer region's sender writes into this region's stream with the access key of a user here:
# aws-cn and aws share no identity, so a role can't be assumed across the border. The user can
# put records into this one stream and do nothing else. Its access key is created outside
# Terraform (README: "Deploying"), so no secret ever enters the state.
#
# Nor does Terraform create the Parameter Store entries the peer's key is stored in, here or on
# the other side: the provider reads a parameter's value back into state on every refresh, so a
# parameter Terraform managed would carry the SecretKey into terraform.tfstate as soon as
# tools/peer_keys.py stored it. The tools create and own every secret value (upgrades.tf lets a
# deployment that applied the older form forget those parameters without deleting them).
resource "aws_iam_group" "peer_writer" {
  name = var.peer_writer_name
}

data "aws_iam_policy_document" "peer_writer" {
  statement {
    sid       = "PutRecordsIntoTheReplicationStream"
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
    resources = [aws_kinesis_stream.replication.arn]

    # Only from the peer's senders' addresses, when they're known: a leaked key is then of no
    # use anywhere else.
    dynamic "condition" {
      for_each = length(var.peer_writer_source_cidrs) > 0 ? [var.peer_writer_source_cidrs] : []
      content {
        test     = "IpAddress"
        variable = "aws:SourceIp"
        values   = condition.value
      }
    }
  }
  # The stream is encrypted with the node's key: a producer needs a data key to write, and only
  # through Kinesis (the key can't be used directly with this user's key pair).
  statement {
    sid       = "EncryptRecords"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.node.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["kinesis.${local.region}.${local.dns_suffix}"]
    }
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
