# One customer-managed key encrypts everything the node stores: tables, streams, queues, the
# peer's keys in Parameter Store, log groups and the alarm topic.
data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_111: a key policy's resource "*" means this key only
  # checkov:skip=CKV_AWS_356: a key policy's resource "*" means this key only
  # checkov:skip=CKV_AWS_109: the account root administers the key through IAM, AWS's default key policy
  statement {
    sid       = "AccountAdministersTheKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  # Log groups encrypt with the key themselves (logs.<region>.amazonaws.com.cn in China).
  statement {
    sid       = "CloudWatchLogsEncryptsTheFunctionsLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = [data.aws_service_principal.logs.id]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["${local.arn_prefix.logs}:log-group:/aws/lambda/*"]
    }
  }

  # Alarms publish to the encrypted alarm topic as CloudWatch, not as a caller of this account.
  statement {
    sid       = "CloudWatchAlarmsPublishToTheTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = [data.aws_service_principal.cloudwatch.name]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_kms_key" "node" {
  description             = "DynamoDB replication in ${local.region}: tables, streams, queues, peer keys, logs"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "node" {
  name          = "alias/ddb-replication"
  target_key_id = aws_kms_key.node.key_id
}
