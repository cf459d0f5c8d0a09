# One customer-managed key encrypts everything the node stores: tables, streams, queues, the
# Parameter Store entries the tools write (peer keys, signing keys), log groups and the alarm
# topic.
#
# Who may do what with it:
# - kms_key_administrators empty (the default): AWS's default key policy. The account root holds
#   kms:*, so IAM policies in the account decide, as for any resource.
# - kms_key_administrators set: key policy, not IAM, decides who uses the key.
#   - Those principals administer it (policy, rotation, aliases, tags, enable and disable,
#     deletion), with no Encrypt, Decrypt, GenerateDataKey or ReEncrypt.
#   - Key use is granted by name: the two function roles; the peer writer, through Kinesis; and
#     principals of this account, through the node's services only (DynamoDB, SQS, Kinesis, SSM
#     for the tools' SecureStrings, EC2 for the proxy's volume), when IAM also lets them (the
#     applications writing the tables, the operators' tools).
#   - CloudWatch Logs and alarms use it as in the default.
#   - The root statement stays, narrowed to reading and replacing the key policy. That's the
#     lockout guard: if every administrator role is deleted, an IAM administrator of the account
#     can still put a working policy back (a key nobody can manage is unrecoverable without
#     AWS Support), and KMS's own lockout check passes for a deployer acting through IAM. It
#     can't use the key without first changing the policy, which CloudTrail records.
locals {
  key_administered_by_name = length(var.kms_key_administrators) > 0

  # What administering the key takes, and nothing that encrypts or decrypts.
  key_administration = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
  ]

  # kms:ViaService values of the services that encrypt with the key on a caller's behalf.
  key_services = [for service in ["dynamodb", "sqs", "kinesis", "ssm", "ec2"] : "${service}.${local.region}.${local.dns_suffix}"]
  account_root = "arn:${local.partition}:iam::${local.account}:root"

  # The principals the key policy names, as ARNs built from their names rather than read from
  # the resources: a policy document that depends on resources with pending changes is only
  # rendered at apply, which would hide the key policy from every plan. The key waits for them
  # instead (depends_on below), since KMS refuses a policy naming a principal that doesn't exist.
  function_role_arns = [for function, f in local.functions : "arn:${local.partition}:iam::${local.account}:role/${local.role_names[function]}"]
  peer_writer_arn    = "arn:${local.partition}:iam::${local.account}:user/${var.peer_writer_name}"
}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_111: a key policy's resource "*" means this key only
  # checkov:skip=CKV_AWS_356: a key policy's resource "*" means this key only
  # checkov:skip=CKV_AWS_109: the account root administers the key through IAM, AWS's default key policy (narrowed to the policy itself when kms_key_administrators is set)
  statement {
    sid       = local.key_administered_by_name ? "AccountCanRestoreTheKeyPolicy" : "AccountAdministersTheKeyThroughIam"
    actions   = local.key_administered_by_name ? ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy"] : ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }

  dynamic "statement" {
    for_each = local.key_administered_by_name ? [1] : []
    content {
      sid       = "KeyAdministrators"
      actions   = local.key_administration
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = var.kms_key_administrators
      }
    }
  }

  # What the functions' own policies grant them (iam.tf, UseTheNodesKey).
  dynamic "statement" {
    for_each = local.key_administered_by_name ? [1] : []
    content {
      sid       = "FunctionsUseTheKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = local.function_role_arns
      }
    }
  }

  dynamic "statement" {
    for_each = local.key_administered_by_name ? [1] : []
    content {
      sid       = "PeerWriterEncryptsRecordsThroughKinesis"
      actions   = ["kms:GenerateDataKey"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = [local.peer_writer_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["kinesis.${local.region}.${local.dns_suffix}"]
      }
    }
  }

  # Applications and operators reach the tables, queues, stream and SecureStrings through those
  # services, which use the key on their behalf; IAM still decides who may call them.
  dynamic "statement" {
    for_each = local.key_administered_by_name ? [1] : []
    content {
      sid = "AccountUsesTheKeyThroughTheNodesServices"
      actions = [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
      ]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = [local.account_root]
      }
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = local.key_services
      }
    }
  }

  # DynamoDB (tables) and EC2 (the proxy's volume) hold grants on the key for the resources they
  # encrypt; they create them when the deployer creates those resources.
  dynamic "statement" {
    for_each = local.key_administered_by_name ? [1] : []
    content {
      sid       = "AccountLetsTheNodesServicesHoldGrants"
      actions   = ["kms:CreateGrant"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = [local.account_root]
      }
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${local.region}.${local.dns_suffix}", "ec2.${local.region}.${local.dns_suffix}"]
      }
      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }
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

# Everything the node stores is encrypted with this key: destroying it (or anything that would
# replace it) loses all of it, so Terraform refuses. To uninstall on purpose, see README
# "Uninstalling".
resource "aws_kms_key" "node" {
  description             = "DynamoDB replication in ${local.region}: tables, streams, queues, peer keys, logs"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.key.json

  lifecycle {
    prevent_destroy = true
  }

  depends_on = [aws_iam_role.function, aws_iam_user.peer_writer]
}

resource "aws_kms_alias" "node" {
  name          = "alias/ddb-replication"
  target_key_id = aws_kms_key.node.key_id
}
