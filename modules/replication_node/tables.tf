# The replicated tables: NEW_AND_OLD_IMAGES streams feed the sender (it needs the old image to
# version deletes and to tell echoes from local writes).
resource "aws_dynamodb_table" "replicated" {
  # checkov:skip=CKV2_AWS_16: on-demand by default; a table set to PROVISIONED keeps the capacity it is given
  for_each = var.tables

  name                        = each.key
  billing_mode                = each.value.billing_mode
  read_capacity               = each.value.billing_mode == "PROVISIONED" ? each.value.read_capacity : null
  write_capacity              = each.value.billing_mode == "PROVISIONED" ? each.value.write_capacity : null
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  stream_enabled              = true
  stream_view_type            = "NEW_AND_OLD_IMAGES"
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = merge(
      { (each.value.hash_key) = each.value.hash_key_type },
      each.value.range_key == null ? {} : { (each.value.range_key) = each.value.range_key_type },
    )
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      enabled        = true
      attribute_name = ttl.value
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.node.arn
  }
}

# The replicator's own tables. stats: one item per replicated table (PK = its name), with
# counters the replicator adds to. tombstones: recent deletes' versions, so that a put which
# raced a delete can't resurrect the item; DynamoDB's TTL removes them (TOMBSTONE_TTL_SECONDS,
# 14 days by default).
locals {
  bookkeeping = {
    stats      = { name = var.stats_table_name, key = "PK", expiry = null }
    tombstones = { name = var.tombstone_table_name, key = "pk", expiry = "expires_at" }
  }
}

resource "aws_dynamodb_table" "bookkeeping" {
  for_each = local.bookkeeping

  name                        = each.value.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.key
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = each.value.key
    type = "S"
  }

  dynamic "ttl" {
    for_each = each.value.expiry == null ? [] : [each.value.expiry]
    content {
      enabled        = true
      attribute_name = ttl.value
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.node.arn
  }
}
