# The replicated tables this node creates: NEW_AND_OLD_IMAGES streams feed the sender (it needs
# the old image to version deletes and to tell echoes from local writes). Their secondary
# indexes are declared as the tables variable gives them, so that a table adopted with
# `terraform import` keeps every index: one left out would be dropped (global) or would replace
# the table (local: those exist only from a table's creation).
locals {
  # Per table: every attribute that keys it or one of its indexes, with its type (the
  # variable's validation makes sure an attribute has one type).
  key_attributes = {
    for name, t in var.tables : name => merge(concat(
      [for i in values(t.global_secondary_indexes) : merge(
        { (i.hash_key) = i.hash_key_type },
        i.range_key == null ? {} : { (i.range_key) = i.range_key_type },
      )],
      [for i in values(t.local_secondary_indexes) : { (i.range_key) = i.range_key_type }],
      [{ (t.hash_key) = t.hash_key_type }],
      t.range_key == null ? [] : [{ (t.range_key) = t.range_key_type }],
    )...)
  }
}

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
    for_each = local.key_attributes[each.key]
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.global_secondary_indexes
    content {
      name               = global_secondary_index.key
      hash_key           = global_secondary_index.value.hash_key
      range_key          = global_secondary_index.value.range_key
      projection_type    = global_secondary_index.value.projection_type
      non_key_attributes = global_secondary_index.value.non_key_attributes
      read_capacity      = each.value.billing_mode == "PROVISIONED" ? global_secondary_index.value.read_capacity : null
      write_capacity     = each.value.billing_mode == "PROVISIONED" ? global_secondary_index.value.write_capacity : null
    }
  }

  dynamic "local_secondary_index" {
    for_each = each.value.local_secondary_indexes
    content {
      name               = local_secondary_index.key
      range_key          = local_secondary_index.value.range_key
      projection_type    = local_secondary_index.value.projection_type
      non_key_attributes = local_secondary_index.value.non_key_attributes
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

# Tables another configuration manages (the application's own Terraform): read, never managed
# here. Their streams must carry both images, as the node's own tables' do, unless the sender
# reads their changes from the capture stream instead.
data "aws_dynamodb_table" "existing" {
  for_each = toset(var.existing_tables)

  name = each.key

  lifecycle {
    postcondition {
      condition     = local.capture[self.name] == "kinesis" || self.stream_enabled
      error_message = "Table ${self.name} has no stream, and replication reads one with both images: run `aws dynamodb update-table --table-name ${self.name} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES` (or set stream_enabled = true and stream_view_type = \"NEW_AND_OLD_IMAGES\" in the Terraform that manages it), then plan again."
    }
    postcondition {
      condition     = local.capture[self.name] == "kinesis" || !self.stream_enabled || self.stream_view_type == "NEW_AND_OLD_IMAGES"
      error_message = "Table ${self.name}'s stream is ${self.stream_view_type}, and replication needs NEW_AND_OLD_IMAGES. A stream's view type can't change in place: run `aws dynamodb update-table --table-name ${self.name} --stream-specification StreamEnabled=false`, then `aws dynamodb update-table --table-name ${self.name} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES` (or set stream_view_type = \"NEW_AND_OLD_IMAGES\" in the Terraform that manages it), then plan again."
    }
  }
}

locals {
  # How the sender reads each table's changes (variables.tf, tables' capture).
  capture = merge(
    { for name, t in var.tables : name => t.capture },
    { for name in var.existing_tables : name => lookup(var.existing_tables_capture, name, "dynamodb_streams") },
  )

  # Every table replicated here, created or existing: its ARN and stream. Keyed by the
  # variables, not by the resources, so that the keys (the mappings' for_each) are known in any
  # walk, and a created table's ARN built from its name, as the key policy's principals are
  # (kms.tf). `terraform import` (in recent Terraform releases) evaluates the configuration
  # with only the instance being imported: the other tables have no stream yet there, hence
  # the try().
  replicated_tables = merge(
    { for name in keys(var.tables) : name => {
      arn        = "arn:${local.partition}:dynamodb:${local.region}:${local.account}:table/${name}"
      stream_arn = try(aws_dynamodb_table.replicated[name].stream_arn, null)
      capture    = local.capture[name]
    } },
    { for name in var.existing_tables : name => {
      arn        = data.aws_dynamodb_table.existing[name].arn
      stream_arn = data.aws_dynamodb_table.existing[name].stream_arn
      capture    = local.capture[name]
    } },
  )
  # The customer managed (or AWS managed) keys existing tables are encrypted with; empty for
  # AWS owned keys, which need no permission.
  existing_table_keys = sort(distinct(compact([
    for table in data.aws_dynamodb_table.existing : try(table.server_side_encryption[0].kms_key_arn, "")
  ])))
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
